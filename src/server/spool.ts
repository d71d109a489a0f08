/**
 * Holding a response back while its request body is still arriving. Deno 2.9's HTTP/1.1
 * server reads the rest of a request body into memory, without limit, once a response has
 * started; so while the upload lasts, the guest's stdout goes to a temporary file instead,
 * and the response starts (from that file, then live) when the upload has ended. Memory stays
 * bounded; a module that echoes its upload still cannot stall on a full pipe.
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

/** Writes stdout to a temporary file until `until` settles or stdout ends. */
export async function spool(
  opening: Uint8Array,
  read: NextRead,
  until: Promise<void>,
): Promise<Spooled> {
  const path = await Deno.makeTempFile({ prefix: "wagi-spool-" });
  const file = await Deno.open(path, { read: true, write: true });
  const write = async (bytes: Uint8Array) => {
    for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
  };
  let bytes = opening.length;
  await write(opening);
  const stop = until.then(() => "stop" as const);
  let pending: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
  let ended = false;
  // One buffer for the whole spool: each read hands it back, so nothing piles up as garbage.
  let buffer = new Uint8Array(64 * 1024);
  for (;;) {
    pending ??= read(buffer);
    const next = await Promise.race([pending, stop]);
    if (next === "stop") break;
    pending = undefined;
    if (next.done) {
      ended = true;
      break;
    }
    bytes += next.value.length;
    await write(next.value);
    buffer = new Uint8Array(next.value.buffer as ArrayBuffer);
  }
  await file.seek(0, Deno.SeekMode.Start);
  const remove = () => {
    try {
      file.close();
    } catch { /* already closed */ }
    Deno.remove(path).catch(() => {});
  };
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const chunk = new Uint8Array(64 * 1024);
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
