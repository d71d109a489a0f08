/**
 * The guest's stdin and stdout as byte rings: reads block until the request body delivers,
 * writes block while the client is not reading (backpressure). A stopped run's rings wake
 * both ends, and the guest's call then throws instead of going on.
 * @module
 */

import type { InputSource, OutputSink } from "../wasi/descriptors.ts";
import type { StopSignal } from "../wasi/state.ts";
import type { ByteRing } from "./byte_ring.ts";

/** stdin fed from a ring the server fills with the request body. */
export class RingSource implements InputSource {
  constructor(readonly ring: ByteRing, readonly stop: StopSignal) {}
  read(memory: Uint8Array, at: number, length: number): number {
    const n = this.ring.readSync(memory, at, length);
    // The end of stdin, or a stop: only the stop throws.
    if (n === 0) this.stop.check();
    return n;
  }
  available(): number {
    return this.ring.buffered;
  }
}

/** stdout into a ring the server drains into the response; output past `limit` is dropped. */
export class RingSink implements OutputSink {
  #written = 0;
  /** True once output was dropped: the consumer left, or the limit was passed. */
  truncated = false;
  constructor(readonly ring: ByteRing, readonly stop: StopSignal, readonly limit = Infinity) {}
  write(memory: Uint8Array, at: number, length: number): void {
    const room = Math.min(length, this.limit - this.#written);
    if (room < length) this.truncated = true;
    if (room > 0 && !this.ring.writeSync(memory, at, room)) {
      // The reader went away, or the run was stopped: only the stop throws.
      this.stop.check();
      this.truncated = true;
    }
    this.#written += Math.max(room, 0);
  }
}
