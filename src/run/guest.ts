/**
 * Running one guest to its end on the calling thread: instantiate the module with a WASI host
 * (and outbound HTTP when it imports it), call its entrypoint, and say how it ended. The pool's
 * workers and the `run` command run guests this way; it knows nothing of HTTP requests.
 * @module
 */

import type { WasiOptions } from "../wasi/state.ts";
import { ProcExit } from "../wasi/syscall.ts";
import { WasiHost } from "../wasi/host.ts";
import {
  DEFAULT_OUTBOUND,
  HTTP_MODULE,
  outboundHttpImports,
  type OutboundOptions,
  promising,
} from "../outbound_http/experimental_http.ts";
import { moduleInfo } from "./module_info.ts";
import { PREEMPT_FUEL, PREEMPT_FUNCTION, PREEMPT_MODULE } from "../wasm/preemption.ts";

/**
 * The exports to call, in order, to run `name` on a fresh instance: WASI reactors get
 * `_initialize` first. Throws when the module does not export `name`.
 */
export function entrypointCalls(instance: WebAssembly.Instance, name: string): unknown[] {
  const exports = instance.exports;
  const entry = exports[name];
  if (typeof entry !== "function") {
    throw new EntrypointMissing(`module has no exported function '${name}'`);
  }
  const init = exports._initialize;
  return name !== "_start" && typeof init === "function" ? [init, entry] : [entry];
}

class EntrypointMissing extends Error {}

/** How a guest failure reads in the log: a trap, a link error, a missing entrypoint, … */
export function describeFailure(error: unknown): string {
  return error instanceof EntrypointMissing
    ? error.message
    : error instanceof WebAssembly.RuntimeError
    ? `trap: ${error.message}`
    : error instanceof WebAssembly.LinkError
    ? `cannot link: ${error.message}`
    : `failed: ${(error as Error)?.message ?? String(error)}`;
}

/** How a guest ended: its exit code, or a host-side failure (trap, missing entrypoint, …). */
export interface GuestEnd {
  exitCode: number;
  failure?: string;
  /** Size of the guest's linear memory when it ended (0 without one). */
  memoryBytes: number;
}

/** How a guest is stopped from outside while it runs (the pool's workers stop theirs). */
export interface GuestControl {
  /** A preemptible guest out of fuel asks here: more fuel, or below zero to make it stop. */
  refuel(): number;
  /** Aborted once the guest must stop: its outbound requests in flight end. */
  signal: AbortSignal;
}

/** A guest nobody stops: its fuel is always refilled. */
const UNSTOPPED: GuestControl = {
  refuel: () => PREEMPT_FUEL,
  signal: new AbortController().signal,
};

/**
 * Instantiates `module` with a WASI host built from `wasi` and calls `entrypoint` to the end,
 * on the calling thread. A module that imports outbound HTTP runs under JavaScript Promise
 * Integration so that its requests can wait for `fetch`. `control` (with `wasi.stop`) stops
 * the guest from outside. Never rejects: every way a guest can end is in the result.
 */
export async function runGuest(
  module: WebAssembly.Module,
  entrypoint: string,
  wasi: WasiOptions,
  outbound: OutboundOptions = DEFAULT_OUTBOUND,
  control: GuestControl = UNSTOPPED,
): Promise<GuestEnd> {
  const info = moduleInfo(module);
  const host = new WasiHost(wasi);
  let memory: WebAssembly.Memory | undefined;
  const memoryBytes = () => memory?.buffer.byteLength ?? 0;
  const http = info.usesHttp
    ? outboundHttpImports(host.memory, outbound, { check: host.stop.check, signal: control.signal })
    : undefined;
  try {
    const imports = host.imports(info.snapshots);
    if (http) imports[HTTP_MODULE] = http.imports as unknown as WebAssembly.ModuleImports;
    if (info.preemptible) imports[PREEMPT_MODULE] = { [PREEMPT_FUNCTION]: control.refuel };
    const instance = new WebAssembly.Instance(module, imports);
    const exported = instance.exports.memory;
    if (exported instanceof WebAssembly.Memory) {
      memory = exported;
      host.memory.attach(memory);
    }
    for (const call of entrypointCalls(instance, entrypoint)) {
      // Under JSPI, suspending imports (outbound HTTP) can wait for promises.
      if (http) await promising(call)();
      else (call as () => void)();
    }
    return { exitCode: 0, memoryBytes: memoryBytes() };
  } catch (error) {
    if (error instanceof ProcExit) return { exitCode: error.code, memoryBytes: memoryBytes() };
    return { exitCode: 0, failure: describeFailure(error), memoryBytes: memoryBytes() };
  } finally {
    http?.closeAll();
    host.closeAll();
  }
}
