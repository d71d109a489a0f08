/**
 * The executor: runs one entrypoint of a compiled module with given argv, environment,
 * stdin and volumes, and reports stdout, stderr and how it ended. It knows nothing of HTTP.
 * @module
 */

import { type Preopen, type WasiOptions } from "../wasi/state.ts";
import { ProcExit } from "../wasi/syscall.ts";
import { type Snapshot, snapshotsOf, WasiHost } from "../wasi/host.ts";
import {
  DEFAULT_OUTBOUND,
  HTTP_MODULE,
  outboundHttpImports,
  type OutboundOptions,
  promising,
} from "../outbound_http/experimental_http.ts";
import { BytesSource, CollectingSink } from "../wasi/streams.ts";

/** stderr kept per run (the rest is dropped): it only goes to the log. */
export const MAX_STDERR = 1024 * 1024;

/** One run of a module, collected whole (for `_routes` discovery and tests). */
export interface RunRequest {
  module: WebAssembly.Module;
  entrypoint: string;
  args: readonly string[];
  env: readonly (readonly [string, string])[];
  stdin: Uint8Array;
  preopens: readonly Preopen[];
}

/** How a collected run ended. */
export interface RunResult {
  stdout: Uint8Array<ArrayBuffer>;
  stderr: Uint8Array<ArrayBuffer>;
  /** The guest's exit code: 0 when the entrypoint returned, or `proc_exit`'s value. */
  exitCode: number;
  /** Set when the run failed on the host side: a trap, a missing entrypoint, instantiation. */
  failure?: string;
}

/** One streamed run of a module, as the server asks for it. */
export interface GuestRequest {
  module: WebAssembly.Module;
  entrypoint: string;
  args: readonly string[];
  env: readonly (readonly [string, string])[];
  preopens: readonly Preopen[];
  /** The guest's stdin: fed as it arrives, or already whole; null for none. */
  stdin: ReadableStream<Uint8Array> | Uint8Array | null;
  /** The guest is stopped after this long. */
  timeoutMs: number;
  /** stdin past this many bytes stops the guest (`stdinTooLarge`). */
  maxStdin: number;
  /** stdout past this many bytes is dropped (`truncated`). */
  maxOutput: number;
  /** What the module may do with outbound HTTP. */
  outbound: OutboundOptions;
  /** Runs of one group (one route) share a cap on workers, see the pool's `maxPerGroup`. */
  group?: string;
}

/** How a streamed run ended. */
export interface GuestOutcome {
  exitCode: number;
  /** Set when the run failed on the host side: trap, timeout, missing entrypoint, … */
  failure?: string;
  stderr: Uint8Array;
  timedOut: boolean;
  stdinTooLarge: boolean;
  /** Stopped because the client went away: not the module's fault, nothing to report. */
  cancelled: boolean;
  /** Stopped (or never started) because the server is shutting down. */
  serverStopping: boolean;
  /** stdout was cut short: the output cap, a stop, or a reader that went away. */
  truncated: boolean;
  elapsedMs: number;
}

/** The outcome of a guest that ran to its end (by returning, exiting or failing). */
export function endedOutcome(
  end: Pick<GuestOutcome, "exitCode" | "failure" | "stderr" | "truncated" | "elapsedMs">,
): GuestOutcome {
  // Field by field rather than a spread: every outcome gets the same shape, cheaply.
  return {
    exitCode: end.exitCode,
    failure: end.failure,
    stderr: end.stderr,
    truncated: end.truncated,
    elapsedMs: end.elapsedMs,
    timedOut: false,
    stdinTooLarge: false,
    cancelled: false,
    serverStopping: false,
  };
}

/** A run in progress: its stdout as it is written, and how it ends. */
export interface Execution {
  /** A byte stream: read it with a BYOB reader to reuse buffers. */
  stdout: ReadableStream<Uint8Array>;
  done: Promise<GuestOutcome>;
  /** Settles once the request body has been read to its end, or will not be read further. */
  stdinDone: Promise<void>;
  /** Stops the guest (the client went away). */
  cancel(): void;
  /**
   * Set when the run had already ended by the time `run` returned (it ran on the calling
   * thread): all its stdout, and how it ended. `stdout` and `done` say the same.
   */
  finished?: { stdout: Uint8Array<ArrayBuffer>; outcome: GuestOutcome };
}

/** Runs guests for the server; HTTP stays on the other side of this interface. */
export interface Executor {
  run(request: GuestRequest): Execution;
  close(): void;
}

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

/** Which WASI snapshots each module imports, worked out once per module. */
const moduleSnapshots = new WeakMap<WebAssembly.Module, Snapshot[]>();

function snapshotsFor(module: WebAssembly.Module): Snapshot[] {
  let found = moduleSnapshots.get(module);
  if (!found) {
    found = snapshotsOf(module);
    moduleSnapshots.set(module, found);
  }
  return found;
}

/** How a guest ended: its exit code, or a host-side failure (trap, missing entrypoint, …). */
export interface GuestEnd {
  exitCode: number;
  failure?: string;
  /** Size of the guest's linear memory when it ended (0 without one). */
  memoryBytes: number;
}

/** Which modules import outbound HTTP, worked out once per module. */
const moduleUsesHttp = new WeakMap<WebAssembly.Module, boolean>();

function usesHttp(module: WebAssembly.Module): boolean {
  let found = moduleUsesHttp.get(module);
  if (found === undefined) {
    found = WebAssembly.Module.imports(module).some((i) => i.module === HTTP_MODULE);
    moduleUsesHttp.set(module, found);
  }
  return found;
}

/**
 * Instantiates `module` with a WASI host built from `wasi` and calls `entrypoint` to the end,
 * on the calling thread. A module that imports outbound HTTP runs under JavaScript Promise
 * Integration so that its requests can wait for `fetch`. Never rejects: every way a guest can
 * end is in the result.
 */
export async function runGuest(
  module: WebAssembly.Module,
  entrypoint: string,
  wasi: WasiOptions,
  outbound: OutboundOptions = DEFAULT_OUTBOUND,
): Promise<GuestEnd> {
  const host = new WasiHost(wasi);
  let memory: WebAssembly.Memory | undefined;
  const memoryBytes = () => memory?.buffer.byteLength ?? 0;
  const http = usesHttp(module) ? outboundHttpImports(host.memory, outbound) : undefined;
  try {
    const imports = host.imports(snapshotsFor(module));
    if (http) imports[HTTP_MODULE] = http.imports as unknown as WebAssembly.ModuleImports;
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

/** Instantiates and runs one request to completion on the calling thread, collecting output. */
export async function runInline(request: RunRequest): Promise<RunResult> {
  const stdout = new CollectingSink();
  const stderr = new CollectingSink();
  const end = await runGuest(request.module, request.entrypoint, {
    args: request.args,
    env: request.env,
    stdin: new BytesSource(request.stdin),
    stdout,
    stderr,
    preopens: request.preopens,
  });
  return { stdout: stdout.bytes(), stderr: stderr.bytes(), ...end };
}
