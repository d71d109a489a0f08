/**
 * Running one guest to its end on the calling thread: instantiate the module with a WASI host
 * (and outbound HTTP when it imports it), call its entrypoint, and say how it ended. The `run`
 * command runs guests this way; the pool's workers through a {@link GuestRunner}, which keeps an
 * instance between runs. It knows nothing of HTTP requests.
 * @module
 */

import type { WasiOptions } from "../wasi/state.ts";
import { ProcExit } from "../wasi/syscall.ts";
import { WasiHost } from "../wasi/host.ts";
import { DEFAULT_OUTBOUND, HTTP_MODULE, type OutboundOptions } from "../outbound_http/names.ts";
import { moduleInfo, type ReuseInfo } from "./module_info.ts";
import {
  FUEL_EXPORT,
  GROW_REFUSED_EXPORT,
  PREEMPT_FUEL,
  PREEMPT_FUNCTION,
  PREEMPT_MODULE,
  STATE_GLOBAL_PREFIX,
} from "../wasm/contract.ts";
import { idleOptions } from "../wasi/state.ts";
import { FreshState, StartWatch } from "./fresh_state.ts";

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
  /**
   * Told when a component's run has its instance (put back, or made), before its guest is
   * called: making one can take tens of milliseconds, which a budget for the run need not count.
   */
  instanceReady?(): void;
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
  // Loaded only for a module that makes outbound requests.
  const outboundHttp = info.usesHttp
    ? await import("../outbound_http/experimental_http.ts")
    : undefined;
  const http = outboundHttp?.outboundHttpImports(host.memory, outbound, {
    check: host.stop.check,
    signal: control.signal,
  });
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
      if (outboundHttp) await outboundHttp.promising(call)();
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

/**
 * Linear memory up to which an instance is put back rather than made anew: putting back copies
 * all of it (the pool's modules do not track their writes), making one maps fresh pages, and
 * unmapping them stalls every thread of the process for a moment.
 */
const REUSE_MAX_MEMORY_BYTES = 2 * 1024 * 1024;

/** A kept instance, and the state to put back before its next run. */
interface KeptInstance {
  instance: WebAssembly.Instance;
  memory: WebAssembly.Memory;
  /** Undefined when its memory is too large to be put back. */
  fresh?: FreshState;
  /** False when it may serve one run only (its start function called the host). */
  reusable: boolean;
  fuel: WebAssembly.Global;
  growRefused: WebAssembly.Global;
}

/**
 * Runs one preemptible module again and again on the calling thread (a pool worker), with one
 * WASI host reset for each run and, when `reuse` allows, one instance put back to its
 * just-instantiated state between runs (as the server's thread does, see inline/runner.ts).
 * An instance that failed, was stopped, grew its memory or is large is let go and made anew.
 */
export class GuestRunner {
  readonly #host = new WasiHost(idleOptions());
  readonly #imports: WebAssembly.Imports;
  readonly #startWatch: StartWatch | undefined;
  #refuel: () => number = UNSTOPPED.refuel;
  #kept: KeptInstance | undefined;
  /** Whether instances of this module may serve more than one run here. */
  readonly #reusable: boolean;

  constructor(readonly module: WebAssembly.Module, readonly reuse: ReuseInfo | undefined) {
    const info = moduleInfo(module);
    const imports = this.#host.imports(info.snapshots);
    // Linked once: the run in progress answers the guest's questions for fuel.
    if (info.preemptible) imports[PREEMPT_MODULE] = { [PREEMPT_FUNCTION]: () => this.#refuel() };
    this.#startWatch = reuse?.hasStart ? new StartWatch() : undefined;
    this.#imports = this.#startWatch?.wrap(imports) ?? imports;
    // Outbound HTTP runs under JSPI, as runGuest runs it: those instances are not kept.
    this.#reusable = reuse !== undefined && reuse.notReusable === undefined &&
      info.preemptible && !info.usesHttp &&
      WebAssembly.Module.exports(module).some((e) => e.name === "memory" && e.kind === "memory");
  }

  /**
   * Runs `entrypoint` to its end with the state `wasi` describes, like {@link runGuest}. Never
   * rejects. `memoryBytes` is the memory this run made (0 for an instance put back).
   */
  async run(
    entrypoint: string,
    wasi: WasiOptions,
    outbound: OutboundOptions = DEFAULT_OUTBOUND,
    control: GuestControl = UNSTOPPED,
  ): Promise<GuestEnd> {
    if (!this.#reusable) return await runGuest(this.module, entrypoint, wasi, outbound, control);
    const host = this.#host;
    host.reset(wasi);
    this.#refuel = control.refuel;
    let kept = this.#kept;
    this.#kept = undefined;
    let made = 0;
    try {
      if (kept) {
        kept.fresh!.restore();
        kept.fuel.value = PREEMPT_FUEL;
        kept.growRefused.value = 0;
      } else {
        kept = this.#instantiate();
        made = kept.memory.buffer.byteLength;
      }
      const instance = kept.instance;
      for (const call of entrypointCalls(instance, entrypoint)) (call as () => void)();
      return { exitCode: 0, memoryBytes: this.#keep(kept, made) };
    } catch (error) {
      if (error instanceof ProcExit) {
        return { exitCode: error.code, memoryBytes: kept ? this.#keep(kept, made) : made };
      }
      // A trap, a stop, an exhausted stack: the instance is not trusted again.
      const left = kept?.memory.buffer.byteLength ?? 0;
      return { exitCode: 0, failure: describeFailure(error), memoryBytes: Math.max(made, left) };
    } finally {
      host.closeAll();
      this.#refuel = UNSTOPPED.refuel;
    }
  }

  /** Linear memory of the instance kept for the next run (0 when none is). */
  get keptBytes(): number {
    return this.#kept?.memory.buffer.byteLength ?? 0;
  }

  /** Lets go of the kept instance: the next run makes a new one. */
  letGo(): void {
    this.#kept = undefined;
  }

  /**
   * Keeps `kept` for the next run when it can be put back; returns the memory this run leaves
   * to be collected (`made` when kept, else all of the instance's).
   */
  #keep(kept: KeptInstance, made: number): number {
    const size = kept.memory.buffer.byteLength;
    if (kept.reusable && kept.fresh?.restorable && size <= REUSE_MAX_MEMORY_BYTES) {
      this.#kept = kept;
      return made;
    }
    return Math.max(made, size);
  }

  #instantiate(): KeptInstance {
    const { instance, startCalledHost } = this.#startWatch
      ? this.#startWatch.instantiate(this.module, this.#imports)
      : { instance: new WebAssembly.Instance(this.module, this.#imports), startCalledHost: false };
    const exports = instance.exports;
    const memory = exports.memory as WebAssembly.Memory;
    this.#host.memory.attach(memory);
    const globals = this.reuse!.stateGlobals.map((g) =>
      exports[STATE_GLOBAL_PREFIX + g] as WebAssembly.Global
    );
    const small = memory.buffer.byteLength <= REUSE_MAX_MEMORY_BYTES;
    return {
      instance,
      memory,
      fresh: small ? new FreshState(memory, globals, undefined) : undefined,
      // A start function that called the host, or a memory whose growth cannot be seen: this
      // instance serves this run only.
      reusable: !startCalledHost && !(memory.buffer instanceof SharedArrayBuffer),
      fuel: exports[FUEL_EXPORT] as WebAssembly.Global,
      growRefused: exports[GROW_REFUSED_EXPORT] as WebAssembly.Global,
    };
  }
}
