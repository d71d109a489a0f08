/**
 * The request body as the guest gets it: streamed, with `CONTENT_LENGTH` known up front.
 * @module
 */

/** Chunked uploads up to this size are read first, so that `CONTENT_LENGTH` can be set. */
const BUFFER_UNKNOWN_LENGTH_UP_TO = 1024 * 1024;

/** A body to stream into the guest, and the `CONTENT_LENGTH` to announce ("" if unknown). */
export interface GuestBody {
  stream: ReadableStream<Uint8Array> | null;
  /** The whole body, when it was small enough to be read before the guest starts. */
  bytes?: Uint8Array;
  length: number | "";
}

/**
 * The request's body for the guest. With a Content-Length (or none at all), it streams as it
 * arrives, or is read whole when it declares at most `readWholeUpTo` bytes. A chunked body is
 * read up to 1 MiB first: if it ends there its length is known (and it is handed over whole
 * when at most `readWholeUpTo`); otherwise it streams on with `CONTENT_LENGTH` empty. "too
 * large" past `maxBytes`.
 */
export async function withKnownLength(
  request: Request,
  maxBytes: number,
  readWholeUpTo = 0,
): Promise<GuestBody | "too large"> {
  const declared = request.headers.get("content-length");
  if (request.body === null) return { stream: null, length: 0 };
  if (declared !== null && /^\d+$/.test(declared)) {
    const length = Number(declared);
    if (length <= readWholeUpTo) {
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await request.arrayBuffer());
      } catch {
        // The client went away mid-upload: nobody will read the response either.
        bytes = new Uint8Array();
      }
      return { stream: null, bytes, length: bytes.length };
    }
    return { stream: request.body, length };
  }
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      if (length <= readWholeUpTo) {
        const bytes = new Uint8Array(length);
        let at = 0;
        for (const chunk of chunks) {
          bytes.set(chunk, at);
          at += chunk.length;
        }
        return { stream: null, bytes, length };
      }
      return { stream: streamOf(chunks, undefined), length };
    }
    chunks.push(value);
    length += value.length;
    if (length > maxBytes) {
      reader.cancel().catch(() => {});
      return "too large";
    }
    if (length > BUFFER_UNKNOWN_LENGTH_UP_TO) {
      return { stream: streamOf(chunks, reader), length: "" };
    }
  }
}

/** A stream of `chunks`, then whatever `rest` still delivers. */
function streamOf(
  chunks: Uint8Array[],
  rest: ReadableStreamDefaultReader<Uint8Array> | undefined,
): ReadableStream<Uint8Array> {
  return new ReadableStream({
    async pull(controller) {
      const next = chunks.shift();
      if (next) return controller.enqueue(next);
      const read = rest ? await rest.read() : { done: true as const, value: undefined };
      if (read.done) controller.close();
      else controller.enqueue(read.value);
    },
    cancel() {
      rest?.cancel().catch(() => {});
    },
  });
}
