/**
 * Stopping a guest that runs in a worker, without killing the worker: the pool writes the id
 * of the run to stop into a word of shared memory that the worker reads at every WASI call,
 * every sleep and every time the guest's fuel runs out (see wasm/preemption.ts). The guest
 * then traps by itself, the worker reports, and the worker serves the next run.
 * @module
 */

import { Unwind } from "../wasi/syscall.ts";
import type { StopSignal } from "../wasi/state.ts";
import { PREEMPT_FUEL } from "../wasm/contract.ts";

/** The slot holding the id of the run to stop (0: none). */
const STOP = 0;

/** Thrown through a stopped guest's calls: it unwinds the guest, which cannot catch it. */
export class Interrupted extends Unwind {}

/** A worker's control block: one word of shared memory, in both threads. */
export class RunControl {
  readonly #words: Int32Array;

  /**
   * The control block on `buffer` (made by {@link RunControl.create}), or at `byteOffset` in it
   * (a slot's, see job_queue.ts), on either thread.
   */
  constructor(readonly buffer: SharedArrayBuffer, byteOffset = 0) {
    this.#words = new Int32Array(buffer, byteOffset, 1);
  }

  /** Pool: no stop is pending (a slot is about to take a new job). */
  clear(): void {
    Atomics.store(this.#words, STOP, 0);
  }

  /** A new control block. */
  static create(): RunControl {
    return new RunControl(new SharedArrayBuffer(4));
  }

  /** Pool: stop run `runId` (waking the worker if it sleeps). */
  stop(runId: number): void {
    Atomics.store(this.#words, STOP, runId);
    Atomics.notify(this.#words, STOP);
  }

  /** Worker: true once run `runId` must stop. */
  stopped(runId: number): boolean {
    return Atomics.load(this.#words, STOP) === runId;
  }

  /**
   * Worker: forget a stop meant for an earlier run, before starting run `runId` (a stop of
   * `runId` itself, already requested, stays).
   */
  begin(runId: number): void {
    const current = Atomics.load(this.#words, STOP);
    if (current !== 0 && current !== runId) {
      Atomics.compareExchange(this.#words, STOP, current, 0);
    }
  }

  /** Worker: the stop signal of run `runId`, for its WASI host. */
  signal(runId: number): StopSignal {
    const words = this.#words;
    const check = () => {
      if (Atomics.load(words, STOP) === runId) throw new Interrupted();
    };
    return {
      check,
      sleep(ms) {
        // Woken early by a stop of any run: then the check says whether it is this one.
        const stop = Atomics.load(words, STOP);
        if (stop === runId) throw new Interrupted();
        Atomics.wait(words, STOP, stop, ms);
        check();
      },
    };
  }

  /** Worker: the fuel a preemptible guest of run `runId` gets next, below zero to stop it. */
  refuel(runId: number): () => number {
    const words = this.#words;
    return () => (Atomics.load(words, STOP) === runId ? -1 : PREEMPT_FUEL);
  }
}
