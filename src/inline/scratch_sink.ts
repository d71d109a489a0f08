/**
 * A run's stdout on the server's thread, kept in one buffer that grows as needed and is reused
 * by the next run (one copy per write, no allocation once the buffer is large enough).
 * @module
 */

import type { OutputSink } from "../wasi/descriptors.ts";
import { type HostBudget, MoveToPool } from "./policy.ts";

/** Writes up to this many bytes are copied without a view. */
const SMALL_WRITE = 64;

/**
 * A run's stdout kept in one buffer that grows as needed and is reused by the next run. A
 * write past the run's limit abandons the run ({@link MoveToPool}): the pool streams it.
 */
export class ScratchSink implements OutputSink {
  #buffer = new Uint8Array(16 * 1024);
  #length = 0;
  #limit = 0;

  constructor(readonly budget: HostBudget) {}

  /** Empties the sink for a new run that may write up to `limit` bytes. */
  reset(limit: number): void {
    this.#length = 0;
    this.#limit = limit;
    // A rare large output should not pin its buffer for good.
    if (this.#buffer.length > 1024 * 1024) this.#buffer = new Uint8Array(16 * 1024);
  }

  write(memory: Uint8Array, at: number, length: number): void {
    const end = this.#length + length;
    if (end > this.#limit) throw new MoveToPool("output larger than kept in memory");
    this.budget.charge(length >> 1);
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
