/**
 * The guest's stdin and stdout as byte rings: reads block until the request body delivers,
 * writes block while the client is not reading (backpressure). A stopped run's rings wake
 * both ends, and the guest's call then throws instead of going on.
 * @module
 */

import type { InputSource, OutputSink } from "../wasi/descriptors.ts";
import type { StopSignal } from "../wasi/state.ts";
import type { ByteRing } from "./byte_ring.ts";

/**
 * Output a guest writes in small pieces is handed to the server in chunks of up to this many
 * bytes: each hand-over wakes the server's thread and makes a piece of the response.
 */
export const CHUNK_BYTES = 16 * 1024;

/**
 * Output is held at most this long after its first byte (checked at each write and each fuel
 * refill of a preemptible guest), and never while the guest waits (see {@link RingSink.flush}).
 */
export const HOLD_MS = 2;

/**
 * stdin fed from a ring the server fills with the request body. `beforeWait` runs before a
 * read waits for the body (the guest's output held so far goes out first).
 */
export class RingSource implements InputSource {
  constructor(
    readonly ring: ByteRing,
    readonly stop: StopSignal,
    readonly beforeWait: () => void = () => {},
  ) {}
  read(memory: Uint8Array, at: number, length: number): number {
    if (length > 0 && this.ring.buffered === 0 && !this.ring.closed) this.beforeWait();
    const n = this.ring.readSync(memory, at, length);
    // The end of stdin, or a stop: only the stop throws.
    if (n === 0) this.stop.check();
    return n;
  }
  available(): number {
    return this.ring.buffered;
  }
}

/**
 * stdout into a ring the server drains into the response; output past `limit` is dropped.
 * Given a `held` buffer (of {@link CHUNK_BYTES}; reused run after run), small writes are
 * gathered into chunks that go out when full, {@link HOLD_MS} after their first byte, before
 * the guest waits, and at its end.
 */
export class RingSink implements OutputSink {
  #written = 0;
  #heldBytes = 0;
  #heldSince = 0;
  /** Whether anything was handed to the ring yet. */
  #handedOver = false;
  /** True once output was dropped: the consumer left, or the limit was passed. */
  truncated = false;
  readonly #held: Uint8Array;
  constructor(
    readonly ring: ByteRing,
    readonly stop: StopSignal,
    readonly limit = Infinity,
    held?: Uint8Array,
    /** The clock held output is timed by, in milliseconds. */
    readonly now: () => number = () => performance.now(),
    /** Called once, before the first bytes go into the ring (the output starts streaming). */
    readonly beforeFirst: () => void = () => {},
  ) {
    this.#held = held ?? new Uint8Array(0);
  }

  write(memory: Uint8Array, at: number, length: number): void {
    const room = Math.min(length, this.limit - this.#written);
    if (room < length) this.truncated = true;
    if (room <= 0) return;
    this.#written += room;
    if (room <= this.#held.length - this.#heldBytes) {
      if (this.#heldBytes === 0) this.#heldSince = this.now();
      this.#held.set(memory.subarray(at, at + room), this.#heldBytes);
      this.#heldBytes += room;
      const due = this.#heldBytes === this.#held.length ||
        this.now() - this.#heldSince >= HOLD_MS;
      if (due && !this.flush()) this.#lost();
      return;
    }
    if (!this.flush() || !this.#toRing(memory, at, room)) this.#lost();
  }

  #toRing(source: Uint8Array, at: number, length: number): boolean {
    if (!this.#handedOver) {
      this.#handedOver = true;
      this.beforeFirst();
    }
    return this.ring.writeSync(source, at, length);
  }

  /**
   * All the output, when none of it went to the ring yet (the run wrote little and ended):
   * the held bytes, valid until the buffer's next use. Undefined once output has streamed.
   */
  unsent(): Uint8Array | undefined {
    if (this.#handedOver) return undefined;
    const bytes = this.#held.subarray(0, this.#heldBytes);
    this.#heldBytes = 0;
    return bytes;
  }

  /**
   * Hands the output held so far to the server (the guest is about to wait, or ended). False
   * when it could not: the reader went away, or the run was stopped. Never throws.
   */
  flush(): boolean {
    if (this.#heldBytes === 0) return true;
    const bytes = this.#heldBytes;
    this.#heldBytes = 0;
    if (this.#toRing(this.#held, 0, bytes)) return true;
    this.truncated = true;
    return false;
  }

  /** Hands over output held for {@link HOLD_MS} or more (a guest computing between writes). */
  flushIfDue(): void {
    if (this.#heldBytes > 0 && this.now() - this.#heldSince >= HOLD_MS) this.flush();
  }

  /** The reader went away, or the run was stopped: only the stop throws. */
  #lost(): void {
    this.stop.check();
    this.truncated = true;
  }
}
