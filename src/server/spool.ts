/**
 * Holding a response back while its request body is still arriving. Deno 2.9's HTTP/1.1
 * server reads the rest of a request body into memory, without limit, once a response has
 * started; so while an upload of unknown length lasts (or one whose declared rest does not fit
 * in the memory bodies share: see respond.ts), the guest's stdout goes to a temporary file
 * instead, and the response starts (from that file, then live) when the upload has ended.
 * Memory stays bounded; a module that echoes its upload still cannot stall on a full pipe. The files are
 * bounded too, per response and over all of them: past that, stdout is no longer read until
 * the upload ends, and the guest waits on it (backpressure).
 * @module
 */

/** Reads the next stdout chunk into `into` (a BYOB read: the buffer comes back in the result). */
export type NextRead = (
  into: Uint8Array<ArrayBuffer>,
) => Promise<ReadableStreamReadResult<Uint8Array<ArrayBuffer>>>;

/** A spooled prefix of stdout and the read that was pending when spooling stopped. */
export interface Spooled {
  /** The spooled bytes as a stream; it deletes its file when read or cancelled. */
  stream: ReadableStream<Uint8Array>;
  /** The stdout read that was in flight when the upload ended (undefined if stdout ended). */
  pending?: Promise<ReadableStreamReadResult<Uint8Array>>;
  /** stdout ended while spooling. */
  ended: boolean;
  bytes: number;
}

/** How much responses may spool. */
export interface SpoolLimits {
  /** One response. */
  perResponse: number;
  /** All of them together. */
  total: number;
}

/** Defaults: a response spools at most 64 MiB, all of them together 512 MiB. */
export const DEFAULT_SPOOL_LIMITS: SpoolLimits = {
  perResponse: 64 * 1024 * 1024,
  total: 512 * 1024 * 1024,
};

/**
 * Limits for bodies of up to `maxBodyBytes`: a module that echoes its upload must be able to
 * spool all of it, or it would wait on its output while its upload waits on it.
 */
export function spoolLimitsFor(maxBodyBytes: number): SpoolLimits {
  const perResponse = Math.max(DEFAULT_SPOOL_LIMITS.perResponse, maxBodyBytes);
  return { perResponse, total: Math.max(DEFAULT_SPOOL_LIMITS.total, perResponse) };
}

/** The size of each read from stdout while spooling. */
const CHUNK = 64 * 1024;

/** Spools responses into one temporary directory, within size limits; removes it on close. */
export class Spooler {
  #dir: Promise<string> | undefined;
  #held = 0;

  constructor(readonly limits: SpoolLimits = DEFAULT_SPOOL_LIMITS) {}

  /** Bytes in spool files now. */
  get held(): number {
    return this.#held;
  }

  #directory(): Promise<string> {
    return this.#dir ??= Deno.makeTempDir({ prefix: "wagi-spool-" });
  }

  /** Writes stdout to a temporary file until `until` settles or stdout ends. */
  async spool(
    opening: Uint8Array,
    read: NextRead,
    until: Promise<void>,
  ): Promise<Spooled> {
    const path = await Deno.makeTempFile({ dir: await this.#directory() });
    const file = await Deno.open(path, { read: true, write: true });
    const write = async (bytes: Uint8Array) => {
      for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
    };
    let bytes = opening.length;
    this.#held += opening.length;
    await write(opening);
    const stop = until.then(() => "stop" as const);
    let pending: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
    let ended = false;
    // One buffer for the whole spool: each read hands it back, so nothing piles up as garbage.
    let buffer = new Uint8Array(CHUNK);
    for (;;) {
      if (!pending) {
        // Full: read no more of stdout until the upload ends; the guest waits meanwhile.
        const full = bytes + CHUNK > this.limits.perResponse ||
          this.#held + CHUNK > this.limits.total;
        if (full) {
          await stop;
          break;
        }
        pending = read(buffer);
      }
      const next = await Promise.race([pending, stop]);
      if (next === "stop") break;
      pending = undefined;
      if (next.done) {
        ended = true;
        break;
      }
      bytes += next.value.length;
      this.#held += next.value.length;
      await write(next.value);
      buffer = new Uint8Array(next.value.buffer as ArrayBuffer);
    }
    await file.seek(0, Deno.SeekMode.Start);
    let removed = false;
    const remove = () => {
      if (removed) return;
      removed = true;
      this.#held -= bytes;
      try {
        file.close();
      } catch { /* already closed */ }
      Deno.remove(path).catch(() => {});
    };
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const chunk = new Uint8Array(CHUNK);
        const n = await file.read(chunk);
        if (n === null) {
          remove();
          controller.close();
        } else controller.enqueue(chunk.subarray(0, n));
      },
      cancel: remove,
    });
    return { stream, pending, ended, bytes };
  }

  /** Removes every spool file, read or not (the server is stopping). */
  async close(): Promise<void> {
    const dir = this.#dir;
    this.#dir = undefined;
    if (dir) await Deno.remove(await dir, { recursive: true }).catch(() => {});
  }
}
