/**
 * The request body as the guest gets it: streamed, with `CONTENT_LENGTH` known up front. A
 * body read before the guest starts (small ones, and the start of a chunked one, to learn its
 * length) is bounded in time — the route's timeout — and, over all requests at once, in the
 * memory it may hold; past that budget a body streams instead.
 * @module
 */

/** Chunked uploads up to this size are read first, so that `CONTENT_LENGTH` can be set. */
const BUFFER_UNKNOWN_LENGTH_UP_TO = 1024 * 1024;

/** Default for the bytes all bodies being read ahead (or read by Deno) may hold at once. */
export const DEFAULT_BODY_BUDGET_BYTES = 32 * 1024 * 1024;

/**
 * The memory shared by every body being read before its guest starts, and by the rest of every
 * upload whose response started before it ended (Deno reads that into memory: see respond.ts).
 */
export class BodyBudget {
  #held = 0;
  constructor(readonly maxBytes = DEFAULT_BODY_BUDGET_BYTES) {}

  /** Bytes held now. */
  get held(): number {
    return this.#held;
  }

  /** Takes `n` bytes of the budget if they are free; false if not. */
  take(n: number): boolean {
    if (this.#held + n > this.maxBytes) return false;
    this.#held += n;
    return true;
  }

  /** Gives back `n` bytes taken with {@link take}. */
  give(n: number): void {
    this.#held -= n;
  }
}

/** A body to stream into the guest, and the `CONTENT_LENGTH` to announce ("" if unknown). */
export interface GuestBody {
  stream: ReadableStream<Uint8Array> | null;
  /** The whole body, when it was small enough to be read before the guest starts. */
  bytes?: Uint8Array;
  length: number | "";
  /** Budget bytes this body holds, to give back once its run has ended. */
  held: number;
}

/** How a body is read. */
export interface BodyLimits {
  /** Bodies over this are "too large". */
  maxBytes: number;
  /** Bodies declaring at most this many bytes are read whole first (when the budget allows). */
  readWholeUpTo: number;
  /** Reading ahead takes at most this long, or the body is "too slow". */
  timeoutMs: number;
  budget: BodyBudget;
}

/** Why a body is not handed to a guest. */
export type BodyRefusal = "too large" | "too slow";

/** A reader's next chunk, or "too slow" once `deadline` has passed. */
function readBefore(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  deadline: Promise<"too slow">,
): Promise<ReadableStreamReadResult<Uint8Array> | "too slow"> {
  return Promise.race([reader.read(), deadline]);
}

/**
 * The request's body for the guest. With a Content-Length (or none at all), it streams as it
 * arrives, or is read whole when it declares at most `readWholeUpTo` bytes. A chunked body is
 * read up to 1 MiB first: if it ends there its length is known (and it is handed over whole
 * when at most `readWholeUpTo`); otherwise it streams on with `CONTENT_LENGTH` empty. What is
 * read ahead is bounded by the limits' time and budget.
 */
export async function withKnownLength(
  request: Request,
  limits: BodyLimits,
): Promise<GuestBody | BodyRefusal> {
  if (request.body === null) return { stream: null, length: 0, held: 0 };
  const declared = request.headers.get("content-length");
  const known = declared !== null && /^\d+$/.test(declared) ? Number(declared) : undefined;
  if (known !== undefined && known > limits.readWholeUpTo) {
    return { stream: request.body, length: known, held: 0 };
  }
  // Read ahead only what the budget allows: the rest of the bodies stream.
  const ahead = known ?? BUFFER_UNKNOWN_LENGTH_UP_TO;
  if (!limits.budget.take(ahead)) {
    return { stream: request.body, length: known ?? "", held: 0 };
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<"too slow">((resolve) => {
    timer = setTimeout(() => resolve("too slow"), limits.timeoutMs);
  });
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  /** What of the budget the body keeps once handed over (the rest is given back). */
  let kept = 0;
  try {
    for (;;) {
      let read;
      try {
        read = await readBefore(reader, deadline);
      } catch {
        // The client went away mid-upload: nobody will read the response either.
        read = { done: true as const, value: undefined };
      }
      if (read === "too slow") {
        reader.cancel().catch(() => {});
        return "too slow";
      }
      if (read.done) {
        kept = length;
        if (length <= limits.readWholeUpTo) {
          return { stream: null, bytes: concat(chunks, length), length, held: kept };
        }
        return { stream: streamOf(chunks, undefined), length, held: kept };
      }
      chunks.push(read.value);
      length += read.value.length;
      if (length > limits.maxBytes) {
        reader.cancel().catch(() => {});
        return "too large";
      }
      if (known === undefined && length > BUFFER_UNKNOWN_LENGTH_UP_TO) {
        kept = length;
        return { stream: streamOf(chunks, reader), length: "", held: kept };
      }
      if (known !== undefined && length > known) {
        // More than it declared: Deno would not deliver that, but be sure.
        reader.cancel().catch(() => {});
        return "too large";
      }
    }
  } finally {
    clearTimeout(timer);
    limits.budget.give(ahead - kept);
  }
}

function concat(chunks: Uint8Array[], length: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const bytes = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
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
