/**
 * Running a prepared module (see variants.ts) on the server's own thread, with one instance
 * kept per module and put back to its just-instantiated state (see run/fresh_state.ts) before each
 * run. A run that would have a lasting effect, runs out of fuel, outgrows the memory kept
 * here or writes too much is abandoned ({@link MoveToPool}) and must be redone in the pool.
 * @module
 */

import { WasiHost } from "../wasi/host.ts";
import { idleOptions } from "../wasi/state.ts";
import { ProcExit } from "../wasi/syscall.ts";
import { BytesSource, CollectingSink } from "../wasi/streams.ts";
import {
  CHUNK_MAP_EXPORT,
  FUEL_EXPORT,
  GROW_REFUSED_EXPORT,
  markChunks,
  STATE_GLOBAL_PREFIX,
} from "../wasm/contract.ts";
import { MAX_STDERR, type RunOutcome, type RunSpec } from "../run/contract.ts";
import { describeFailure, entrypointCalls } from "../run/guest.ts";
import { moduleInfo } from "../run/module_info.ts";
import { HostBudget, inlineImports, MoveToPool } from "./policy.ts";
import { ScratchSink } from "./scratch_sink.ts";
import { FreshState, StartWatch } from "../run/fresh_state.ts";
import { INLINE_FUEL, type InlineModule } from "./variants.ts";

/** What a run on the server's thread is given: a run's spec, with its stdin whole. */
export type InlineSpec =
  & Pick<
    RunSpec,
    "entrypoint" | "args" | "env" | "preopens" | "maxOutput" | "maxDescriptors" | "request"
  >
  & {
    stdin: Uint8Array;
  };

/** How a run on the server's thread ended. */
export interface InlineResult {
  /** All of stdout: a view of the runner's buffer, valid until its next run. */
  stdout: Uint8Array<ArrayBuffer>;
  outcome: RunOutcome;
  /**
   * Time the run held this thread in whole milliseconds, instantiation left out (putting a
   * reused instance back counts).
   */
  guestMs: number;
  /** The runner's first run: the engine was still compiling the module's functions. */
  firstRun: boolean;
}

/**
 * What the bytes host calls move may cost a run here, in fuel units: half a unit a byte (see
 * policy.ts), about 20 ms of host work. (Each call itself is charged to the fuel.)
 */
export const INLINE_HOST_BUDGET = 20_000_000;

/** An instance, and the state to put back before its next run. */
interface Warm {
  instance: WebAssembly.Instance;
  /** Its state right after instantiation; undefined when the instance is not reused. */
  fresh?: FreshState;
  fuel: WebAssembly.Global;
  /** Set by the guest when a `memory.grow` was refused. */
  growRefused: WebAssembly.Global;
  used: boolean;
}

/** Runs one module on the calling thread, reusing its instance when the module allows. */
export class InlineRunner {
  #host: WasiHost;
  #imports: WebAssembly.Imports;
  #budget = new HostBudget(INLINE_HOST_BUDGET);
  #stdout = new ScratchSink(this.#budget);
  #warm: Warm | undefined;
  /** Set after the first run: later runs use compiled code. */
  #warmedUp = false;
  /** Notices a start function's host calls (modules with one only). */
  #startWatch: StartWatch | undefined;

  constructor(readonly target: InlineModule) {
    this.#host = new WasiHost(idleOptions());
    const { snapshots } = moduleInfo(target.module);
    const imports = inlineImports(this.#host.imports(snapshots), this.#host);
    this.#startWatch = target.hasStart ? new StartWatch() : undefined;
    this.#imports = this.#startWatch?.wrap(imports) ?? imports;
  }

  /** An instance in its just-instantiated state. */
  #ready(): Warm {
    const warm = this.#warm;
    if (warm && !warm.used) return warm;
    if (warm?.fresh?.restorable) {
      warm.fresh.restore();
      warm.used = false;
      return warm;
    }
    return this.#warm = this.#instantiate();
  }

  #instantiate(): Warm {
    const { instance, startCalledHost } = this.#startWatch
      ? this.#startWatch.instantiate(this.target.module, this.#imports)
      : {
        instance: new WebAssembly.Instance(this.target.module, this.#imports),
        startCalledHost: false,
      };
    const exports = instance.exports;
    const memory = exports.memory instanceof WebAssembly.Memory ? exports.memory : undefined;
    const chunkMap = exports[CHUNK_MAP_EXPORT];
    const written = this.target.tracksWrites && chunkMap instanceof WebAssembly.Memory
      ? new Uint8Array(chunkMap.buffer)
      : undefined;
    if (memory) {
      // What the host writes into the guest's memory is charged, and marked when tracked.
      const budget = this.#budget;
      this.#host.memory.attach(
        memory,
        written
          ? (at, length) => {
            budget.charge(length >> 1);
            markChunks(written, at, length);
          }
          : (_at, length) => budget.charge(length >> 1),
      );
    }
    // A shared memory keeps its buffer when it grows: growth could not be seen, so no reuse.
    // After a start function that called nobody, every instance starts as this one: the state
    // to put back is the one after it ran.
    const reusable = this.target.notReusable === undefined && !startCalledHost &&
      memory !== undefined && !(memory.buffer instanceof SharedArrayBuffer);
    const globals = this.target.stateGlobals.map((g) =>
      exports[STATE_GLOBAL_PREFIX + g] as WebAssembly.Global
    );
    return {
      instance,
      fresh: reusable ? new FreshState(memory!, globals, written) : undefined,
      fuel: exports[FUEL_EXPORT] as WebAssembly.Global,
      growRefused: exports[GROW_REFUSED_EXPORT] as WebAssembly.Global,
      used: false,
    };
  }

  /**
   * Runs `spec` to its end, or abandons it: a {@link MoveToPool} says why the run must be
   * redone in the pool. Nothing the guest did has left this thread either way.
   */
  run(spec: InlineSpec): InlineResult | MoveToPool {
    // V8's own clock: `performance.now()` is a call into Deno, and whole milliseconds are
    // enough to tell a run over the limit that sends its route to the pool. (A wall-clock
    // step can only make one run look shorter or longer than it was.)
    const started = Date.now();
    const stdout = this.#stdout;
    stdout.reset(spec.maxOutput);
    this.#budget.spent = 0;
    const stderr = new CollectingSink(MAX_STDERR);
    const host = this.#host;
    // The run's state first: a start function runs while the module is instantiated.
    host.reset({
      args: spec.args,
      env: spec.env,
      stdin: new BytesSource(spec.stdin),
      stdout,
      stderr,
      preopens: spec.preopens,
      maxDescriptors: spec.maxDescriptors,
    });
    const before = this.#warm;
    let warm: Warm;
    try {
      warm = this.#ready();
    } catch (error) {
      // A start function that failed here (out of fuel, a call not allowed here, a trap): the
      // pool's instantiation gives the real answer.
      this.#warm = undefined;
      host.closeAll();
      return error instanceof MoveToPool
        ? error
        : new MoveToPool(`instantiation: ${describeFailure(error)}`);
    }
    warm.used = true;
    const firstRun = !this.#warmedUp;
    this.#warmedUp = true;
    // A second clock read only when instantiation happened, which the run's time on this
    // thread must not include.
    const guestStarted = warm === before ? started : Date.now();
    warm.fuel.value = INLINE_FUEL;
    warm.growRefused.value = 0;
    let exitCode = 0;
    let failure: string | undefined;
    try {
      for (const call of entrypointCalls(warm.instance, spec.entrypoint)) (call as () => void)();
    } catch (error) {
      if (error instanceof MoveToPool) return error;
      // This thread's stack is not the one a worker has: the pool's answer is the real one.
      if (error instanceof RangeError) return new MoveToPool("stack overflow");
      if (error instanceof ProcExit) exitCode = error.code;
      else if (error instanceof WebAssembly.RuntimeError && (warm.fuel.value as number) < 0) {
        return new MoveToPool("out of fuel");
      } else failure = describeFailure(error);
    } finally {
      host.closeAll();
    }
    // A guest refused memory here, below its own limit, might have got it in the pool.
    if (warm.growRefused.value !== 0 && this.target.capBelowLimit) {
      this.#warm = undefined;
      return new MoveToPool("reached the memory kept on the server's thread");
    }
    // An instance whose memory grew cannot be reset: let it go now rather than at the next run.
    if (!warm.fresh?.restorable) this.#warm = undefined;
    const ended = Date.now();
    return {
      stdout: stdout.bytes(),
      // Field by field, every outcome of the same shape.
      outcome: {
        exitCode,
        failure,
        stop: undefined,
        stderr: stderr.bytes(),
        truncated: false,
      },
      guestMs: ended - guestStarted,
      firstRun,
    };
  }
}
