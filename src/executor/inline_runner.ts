/**
 * Running a metered module on the server's own thread, with one instance kept per module and
 * put back to its just-instantiated state (linear memory and every mutable global) before
 * each run. A run that would have a lasting effect, runs out of fuel, outgrows the memory kept
 * here or writes too much is abandoned ({@link Migrate}) and must be redone in the pool.
 * @module
 */

import { idleOptions, type Preopen } from "../wasi/state.ts";
import { ProcExit } from "../wasi/syscall.ts";
import { type Snapshot, snapshotsOf, WasiHost } from "../wasi/host.ts";
import { BytesSource, CollectingSink } from "../wasi/streams.ts";
import type { OutputSink } from "../wasi/descriptors.ts";
import { describeFailure, entrypointCalls, MAX_STDERR } from "./executor.ts";
import { FUEL_EXPORT, GROW_REFUSED_EXPORT, STATE_GLOBAL_PREFIX } from "../wasm/metering.ts";
import { inlineImports, Migrate } from "./inline_policy.ts";
import { CHUNK_BITS, CHUNK_MAP_EXPORT, markChunks, STORE_SPILL } from "../wasm/write_tracking.ts";

/**
 * Fuel a run may use on the server's thread, in instructions (roughly: each function call and
 * loop pass is charged the size of its body): about 2 ms of a tight loop once compiled, a few
 * more while the engine still compiles. A guest that needs more is redone in the pool, where
 * its real timeout applies.
 */
export const INLINE_FUEL = 50_000_000;

/** A module prepared by `meter`, compiled, with what its instances allow. */
export interface InlineModule {
  module: WebAssembly.Module;
  /** Indices of its exported mutable globals (see `STATE_GLOBAL_PREFIX`). */
  stateGlobals: readonly number[];
  /** Why an instance must not serve a second run; undefined when it may. */
  notReusable?: string;
  /**
   * Its memory maximum here is below its real limit: a run refused memory here is redone in
   * the pool, where it may get it.
   */
  capBelowLimit: boolean;
  /**
   * It records the chunks it writes (see write_tracking.ts), so only those are put back
   * between runs; otherwise all of its memory is.
   */
  tracksWrites: boolean;
}

/** One run on the server's thread. */
export interface InlineRun {
  entrypoint: string;
  args: readonly string[];
  env: readonly (readonly [string, string])[];
  preopens: readonly Preopen[];
  stdin: Uint8Array;
  /** stdout kept at most; a run that writes more is abandoned. */
  maxOutput: number;
}

/** How a run on the server's thread ended. */
export interface InlineResult {
  /** All of stdout: a view of the runner's buffer, valid until its next run. */
  stdout: Uint8Array<ArrayBuffer>;
  stderr: Uint8Array;
  exitCode: number;
  failure?: string;
  /** Time from the start of the run to its end, instantiation included (whole ms). */
  elapsedMs: number;
  /**
   * Time the run held this thread in whole milliseconds, instantiation left out (putting a
   * reused instance back counts), or undefined on a runner's first run, when the engine is
   * still compiling the module's functions (so it says nothing about later runs).
   */
  guestMs?: number;
}

/** Writes up to this many bytes are copied without a view. */
const SMALL_WRITE = 64;

/**
 * A run's stdout kept in one buffer that grows as needed and is reused by the next run. A
 * write past the run's limit abandons the run ({@link Migrate}): the pool streams it instead.
 */
class ScratchSink implements OutputSink {
  #buffer = new Uint8Array(16 * 1024);
  #length = 0;
  #limit = 0;

  /** Empties the sink for a new run that may write up to `limit` bytes. */
  reset(limit: number): void {
    this.#length = 0;
    this.#limit = limit;
    // A rare large output should not pin its buffer for good.
    if (this.#buffer.length > 1024 * 1024) this.#buffer = new Uint8Array(16 * 1024);
  }

  write(memory: Uint8Array, at: number, length: number): void {
    const end = this.#length + length;
    if (end > this.#limit) throw new Migrate("output larger than kept in memory");
    if (end > this.#buffer.length) {
      const grown = new Uint8Array(Math.max(end, this.#buffer.length * 2));
      grown.set(this.#buffer.subarray(0, this.#length));
      this.#buffer = grown;
    }
    const buffer = this.#buffer;
    if (length <= SMALL_WRITE) {
      // A short copy byte by byte costs less than the view a `set` needs.
      for (let i = 0, to = this.#length; i < length; i++) buffer[to + i] = memory[at + i];
    } else buffer.set(memory.subarray(at, at + length), this.#length);
    this.#length = end;
  }

  /** What was written: a view of the buffer, valid until the next `reset`. */
  bytes(): Uint8Array<ArrayBuffer> {
    return this.#buffer.subarray(0, this.#length);
  }
}

/** A copy of `bytes` up to and including its last non-zero byte. */
function nonZeroPrefix(bytes: Uint8Array): Uint8Array {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return bytes.slice(0, end);
}

/**
 * Puts back the chunks marked in `written` (clearing the marks): each from `pristine`, zeros
 * past its end. A run of marked chunks is restored as one range, plus the bytes a store at the
 * end of its last chunk may have written into the next one.
 */
function restoreWritten(
  view: Uint8Array,
  pristine: Uint8Array,
  written: Uint8Array,
  eights: Float64Array,
): void {
  // Memory sizes are whole 64 KiB pages, so `chunks` is a multiple of 64: whole groups of 8.
  const chunks = view.length >>> CHUNK_BITS;
  for (let chunk = 0; chunk < chunks;) {
    // Eight marks (0 or 1 each) read as a double are 0 only when all eight are.
    if ((chunk & 7) === 0 && eights[chunk >>> 3] === 0) {
      chunk += 8;
      continue;
    }
    if (written[chunk] === 0) {
      chunk++;
      continue;
    }
    let end = chunk + 1;
    while (end < chunks && written[end] !== 0) end++;
    if (end === chunk + 1) written[chunk] = 0;
    else written.fill(0, chunk, end);
    const from = chunk << CHUNK_BITS;
    const to = Math.min(view.length, (end << CHUNK_BITS) + STORE_SPILL);
    const kept = pristine.length;
    if (from < kept) view.set(pristine.subarray(from, Math.min(to, kept)), from);
    if (to > kept) view.fill(0, Math.max(from, kept), to);
    chunk = end;
  }
}

/** An instance and the state to put back before its next run. */
interface Warm {
  instance: WebAssembly.Instance;
  /**
   * Memory as it was right after instantiation, up to its last non-zero byte (the rest was
   * zero); undefined when the instance is not reused.
   */
  pristine?: Uint8Array;
  /** A view of the memory; it has no bytes once the memory grew (its buffer is detached). */
  view?: Uint8Array;
  /** Its chunk map, when its module tracks writes and the instance is reused. */
  written?: Uint8Array;
  /** The chunk map as doubles, to skip eight clean chunks at a time. */
  writtenEights?: Float64Array;
  globals: WebAssembly.Global[];
  initial: unknown[];
  fuel: WebAssembly.Global;
  /** Set by the guest when a `memory.grow` was refused. */
  growRefused: WebAssembly.Global;
  used: boolean;
}

/** Runs one module on the calling thread, reusing its instance when the module allows. */
export class InlineRunner {
  #host: WasiHost;
  #imports: WebAssembly.Imports;
  #stdout = new ScratchSink();
  #warm: Warm | undefined;
  /** Set after the first run: later runs use compiled code. */
  #warmedUp = false;

  constructor(readonly target: InlineModule) {
    this.#host = new WasiHost(idleOptions());
    const snapshots: Snapshot[] = snapshotsOf(target.module);
    this.#imports = inlineImports(this.#host.imports(snapshots), this.#host);
  }

  /** An instance in its just-instantiated state. */
  #ready(): Warm {
    const warm = this.#warm;
    if (warm && !warm.used) return warm;
    if (warm?.pristine && warm.view!.byteLength !== 0) {
      // The view still has its bytes: the memory did not grow (growing detaches the buffer),
      // so putting the bytes back restores it whole.
      if (warm.written) {
        restoreWritten(warm.view!, warm.pristine, warm.written, warm.writtenEights!);
      } else {
        // Zeroing costs less than copying, and most of a fresh memory is zeros.
        warm.view!.set(warm.pristine);
        warm.view!.fill(0, warm.pristine.length);
      }
      for (let i = 0; i < warm.globals.length; i++) warm.globals[i].value = warm.initial[i];
      warm.used = false;
      return warm;
    }
    return this.#warm = this.#instantiate();
  }

  #instantiate(): Warm {
    const instance = new WebAssembly.Instance(this.target.module, this.#imports);
    const exports = instance.exports;
    const memory = exports.memory instanceof WebAssembly.Memory ? exports.memory : undefined;
    const chunkMap = exports[CHUNK_MAP_EXPORT];
    const written = this.target.tracksWrites && chunkMap instanceof WebAssembly.Memory
      ? new Uint8Array(chunkMap.buffer)
      : undefined;
    if (memory) {
      this.#host.memory.attach(
        memory,
        written && ((at, length) => markChunks(written, at, length)),
      );
    }
    const globals = this.target.stateGlobals.map((g) =>
      exports[STATE_GLOBAL_PREFIX + g] as WebAssembly.Global
    );
    // A shared memory keeps its buffer when it grows: growth could not be seen, so no reuse.
    const reusable = this.target.notReusable === undefined && memory !== undefined &&
      !(memory.buffer instanceof SharedArrayBuffer);
    return {
      written: reusable ? written : undefined,
      writtenEights: reusable && written ? new Float64Array(written.buffer) : undefined,
      instance,
      pristine: reusable ? nonZeroPrefix(new Uint8Array(memory!.buffer)) : undefined,
      view: memory ? new Uint8Array(memory.buffer) : undefined,
      globals,
      initial: reusable ? globals.map((g) => g.value) : [],
      fuel: exports[FUEL_EXPORT] as WebAssembly.Global,
      growRefused: exports[GROW_REFUSED_EXPORT] as WebAssembly.Global,
      used: false,
    };
  }

  /**
   * Runs `run` to its end, or abandons it: a {@link Migrate} says why the run must be redone
   * in the pool. Nothing the guest did has left this thread either way.
   */
  run(run: InlineRun): InlineResult | Migrate {
    // The clock is V8's own: `performance.now()` is a call into Deno that cost ~0.1 µs each,
    // about a tenth of a small module's request, and whole milliseconds are enough to tell a
    // run over the 2 ms that sends its route to the pool. (A wall-clock step can only make one
    // run look shorter or longer than it was.)
    const started = Date.now();
    const stdout = this.#stdout;
    stdout.reset(run.maxOutput);
    const stderr = new CollectingSink(MAX_STDERR);
    const host = this.#host;
    // The run's state first: a start function runs while the module is instantiated.
    host.reset({
      args: run.args,
      env: run.env,
      stdin: new BytesSource(run.stdin),
      stdout,
      stderr,
      preopens: run.preopens,
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
      return error instanceof Migrate
        ? error
        : new Migrate(`instantiation: ${describeFailure(error)}`);
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
      for (const call of entrypointCalls(warm.instance, run.entrypoint)) (call as () => void)();
    } catch (error) {
      if (error instanceof Migrate) return error;
      // This thread's stack is not the one a worker has: the pool's answer is the real one.
      if (error instanceof RangeError) return new Migrate("stack overflow");
      if (error instanceof ProcExit) exitCode = error.code;
      else if (error instanceof WebAssembly.RuntimeError && (warm.fuel.value as number) < 0) {
        return new Migrate("out of fuel");
      } else failure = describeFailure(error);
    } finally {
      host.closeAll();
    }
    // A guest refused memory here, below its own limit, might have got it in the pool.
    if (warm.growRefused.value !== 0 && this.target.capBelowLimit) {
      this.#warm = undefined;
      return new Migrate("reached the memory kept on the server's thread");
    }
    // An instance whose memory grew cannot be reset: let it go now rather than at the next run.
    if (!warm.pristine || warm.view!.byteLength === 0) this.#warm = undefined;
    const ended = Date.now();
    return {
      stdout: stdout.bytes(),
      stderr: stderr.bytes(),
      exitCode,
      failure,
      elapsedMs: ended - started,
      guestMs: firstRun ? undefined : ended - guestStarted,
    };
  }
}
