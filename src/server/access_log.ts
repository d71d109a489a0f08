/**
 * The access log: a line per answered request, in the Common Log Format or as JSON, written
 * in batches (a write per request would cost more than many requests do).
 * @module
 */

/** How each line is written. */
export type AccessLogFormat = "common" | "json";

/** What a line says about one request. */
export interface AccessEntry {
  remote: string;
  method: string;
  /** The request target as sent: path and query. */
  target: string;
  protocol: string;
  status: number;
  /** Response body bytes when known (a declared length), else undefined. */
  bytes: number | undefined;
  /** When the request arrived (ms since the epoch). */
  time: number;
  /** Until the response's headers, in milliseconds. */
  durationMs: number;
  /** The route that answered, if any. */
  route: string | undefined;
}

/** Where batches of lines go: a file or stdout (a write may take only part of the bytes). */
export interface LineSink {
  write(bytes: Uint8Array): Promise<number>;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const two = (n: number) => String(n).padStart(2, "0");

/** A time as CLF writes it, in UTC: `10/Oct/2000:13:55:36 +0000`. */
export function clfTime(ms: number): string {
  const d = new Date(ms);
  return `${two(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:` +
    `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`;
}

/** One line for `entry` in `format`, with its newline. */
export function formatAccess(entry: AccessEntry, format: AccessLogFormat): string {
  if (format === "json") {
    return JSON.stringify({
      time: new Date(entry.time).toISOString(),
      remote: entry.remote,
      method: entry.method,
      target: entry.target,
      protocol: entry.protocol,
      status: entry.status,
      bytes: entry.bytes ?? null,
      duration_ms: Math.round(entry.durationMs * 1000) / 1000,
      route: entry.route ?? null,
    }) + "\n";
  }
  // host ident authuser [date] "request" status bytes; the target is the client's, with any
  // quote or control character escaped so that a line cannot be forged.
  const request = `${entry.method} ${entry.target} ${entry.protocol}`.replace(
    // deno-lint-ignore no-control-regex
    /["\\\x00-\x1f\x7f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
  return `${entry.remote || "-"} - - [${clfTime(entry.time)}] "${request}" ${entry.status} ` +
    `${entry.bytes ?? "-"}\n`;
}

/** Lines gathered and written in batches; {@link flush} at the end. */
export class AccessLog {
  #pending: string[] = [];
  #size = 0;
  #timer: number | undefined;
  #writing: Promise<unknown> = Promise.resolve();

  constructor(
    readonly format: AccessLogFormat,
    readonly sink: LineSink,
    /** Lines wait at most this long before they are written. */
    readonly delayMs = 200,
    /**
     * Other server isolates write to the same sink (`--servers`): each write then holds whole
     * lines and at most {@link ATOMIC_WRITE_BYTES}, which a pipe never interleaves with another.
     */
    readonly shared = false,
  ) {}

  /** Adds the line for `entry`. */
  add(entry: AccessEntry): void {
    const line = formatAccess(entry, this.format);
    this.#pending.push(line);
    this.#size += line.length;
    if (this.#size >= 64 * 1024) this.flush();
    else if (this.#timer === undefined) {
      // Deno timers are numbers (the type says Timeout when Node types are loaded).
      const timer = setTimeout(() => this.flush(), this.delayMs) as unknown as number;
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
  }

  /** Writes what is pending; resolves once everything added so far is written. */
  flush(): Promise<unknown> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending.length > 0) {
      const encoder = new TextEncoder();
      const batches = this.shared
        ? linesUpTo(this.#pending.map((line) => encoder.encode(line)), ATOMIC_WRITE_BYTES)
        : [encoder.encode(this.#pending.join(""))];
      this.#pending = [];
      this.#size = 0;
      for (const bytes of batches) {
        // In order, one batch after another; a failed write loses its batch only.
        this.#writing = this.#writing.then(() => writeAll(this.sink, bytes)).catch(() => {});
      }
    }
    return this.#writing;
  }
}

/** PIPE_BUF on Linux: a write to a pipe of at most this many bytes is never interleaved. */
export const ATOMIC_WRITE_BYTES = 4096;

/** `lines` in order, joined into pieces of at most `max` bytes (a longer line alone). */
function linesUpTo(lines: readonly Uint8Array[], max: number): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  let start = 0;
  while (start < lines.length) {
    let end = start + 1;
    let size = lines[start].length;
    while (end < lines.length && size + lines[end].length <= max) size += lines[end++].length;
    const piece = new Uint8Array(size);
    let at = 0;
    for (let i = start; i < end; i++) {
      piece.set(lines[i], at);
      at += lines[i].length;
    }
    pieces.push(piece);
    start = end;
  }
  return pieces;
}

async function writeAll(sink: LineSink, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await sink.write(bytes.subarray(at));
}
