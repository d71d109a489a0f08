/**
 * Where a pool run's stdout is read from, as the run learns it: a ring of its own (a run handed
 * over as a message), its queue slot's ring (a queued run that streams; what is left unread
 * when the guest ends is copied out so that the slot can serve another run at once), or bytes
 * already in hand.
 * @module
 */

import type { ByteRing } from "./byte_ring.ts";

/** A source of a run's stdout. */
export interface RunOutput {
  /** Fills `target` with output, waiting for some; 0 at the end. */
  readInto(target: Uint8Array): Promise<number>;
  /** The reader read to the end. */
  finished(): void;
  /** The reader went away: what is still written is dropped. */
  cancel(): void;
}

/** Output already in hand. */
export class BytesOutput implements RunOutput {
  #at = 0;
  constructor(readonly bytes: Uint8Array) {}
  readInto(target: Uint8Array): Promise<number> {
    const n = Math.min(target.length, this.bytes.length - this.#at);
    target.set(this.bytes.subarray(this.#at, this.#at + n));
    this.#at += n;
    return Promise.resolve(n);
  }
  finished(): void {}
  cancel(): void {}
}

/** Output through a ring; `onFinished` runs once it was read to the end. */
export class RingOutput implements RunOutput {
  #reading: Promise<number> | undefined;
  #rest: BytesOutput | undefined;

  constructor(readonly ring: ByteRing, readonly onFinished: () => void = () => {}) {}

  async readInto(target: Uint8Array): Promise<number> {
    if (this.#rest) return await this.#rest.readInto(target);
    const reading = this.ring.readInto(target);
    this.#reading = reading;
    try {
      return await reading;
    } finally {
      this.#reading = undefined;
    }
  }

  finished(): void {
    this.onFinished();
  }

  cancel(): void {
    if (!this.#rest) this.ring.abandon();
    this.#rest = new BytesOutput(new Uint8Array());
  }

  /**
   * Takes what is left in the ring (its writer ended: closed it, or was stopped) so that the
   * ring can serve another run; reads go on from the copy.
   */
  async detach(): Promise<void> {
    // A read in progress ends at once on a closed or interrupted ring.
    while (this.#reading) await this.#reading.catch(() => 0);
    if (this.#rest) return;
    const ring = this.ring;
    const left = ring.interrupted || ring.abandoned ? 0 : ring.buffered;
    const rest = new Uint8Array(left);
    if (left > 0) ring.readSync(rest, 0, left);
    this.#rest = new BytesOutput(rest);
  }
}
