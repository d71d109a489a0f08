/**
 * The guest's stdin and stdout as byte rings: reads block until the request body delivers,
 * writes block while the client is not reading (backpressure).
 * @module
 */

import type { InputSource, OutputSink } from "../wasi/descriptors.ts";
import { ByteRing } from "./byte_ring.ts";

/** stdin fed from a ring the server fills with the request body. */
export class RingSource implements InputSource {
  constructor(readonly ring: ByteRing) {}
  read(memory: Uint8Array, at: number, length: number): number {
    return this.ring.readSync(memory, at, length);
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
  constructor(readonly ring: ByteRing, readonly limit = Infinity) {}
  write(memory: Uint8Array, at: number, length: number): void {
    const room = Math.min(length, this.limit - this.#written);
    if (room < length) this.truncated = true;
    if (room > 0 && !this.ring.writeSync(memory, at, room)) this.truncated = true;
    this.#written += Math.max(room, 0);
  }
}
