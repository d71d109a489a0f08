/**
 * Feeding a request body into a guest's stdin ring as the guest makes room.
 * @module
 */

import type { ByteRing } from "./byte_ring.ts";

/** A body being fed into a ring. */
export interface StdinPump {
  /** Stops feeding (the guest ended or was stopped) and lets go of the body. */
  stop(): void;
  /** Settles when the ring is no longer touched. */
  finished: Promise<void>;
}

/**
 * Feeds `body` into `ring`, then closes it. Calls `tooLarge` once more than `max` bytes
 * arrived (and feeds no more).
 */
export function pumpStdin(
  body: ReadableStream<Uint8Array> | Uint8Array | null,
  ring: ByteRing,
  max: number,
  tooLarge: () => void,
): StdinPump {
  if (!body) {
    ring.close();
    return { stop: () => {}, finished: Promise.resolve() };
  }
  if (body instanceof Uint8Array) {
    if (body.length > max) tooLarge();
    const finished = (body.length > max ? Promise.resolve(false) : ring.write(body))
      .catch(() => false)
      .then(() => ring.close());
    return { stop: () => {}, finished };
  }
  const reader = body.getReader();
  const finished = (async () => {
    let total = 0;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        total += value.length;
        if (total > max) {
          tooLarge();
          break;
        }
        if (!(await ring.write(value))) break;
      }
    } catch {
      // The client went away mid-upload, or feeding was stopped: stdin ends here.
    } finally {
      ring.close();
    }
  })();
  return { stop: () => void reader.cancel().catch(() => {}), finished };
}
