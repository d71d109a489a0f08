/**
 * CGI → Response: a module's stdout (headers, blank line, body) as an HTTP response (docs/wagi.md, "Responses").
 * @module
 */

/** The text WAGI answers when a module gives neither `Content-Type`, `Location` nor `Status`. */
export const MISSING_CONTENT_TYPE = "Exactly one of 'location' or 'content-type' must be specified";

/** A parsed CGI output: the response, or an error status with a reason for the log. */
export interface CgiOutput {
  response: Response;
  /** Problems to log: skipped header lines, or why the response is an error. */
  warnings: string[];
}

const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/**
 * Where the body starts: just after the first empty header line (`\n` or `\r\n`), or -1
 * while no empty line has been seen.
 */
export function bodyStart(output: Uint8Array): number {
  // One pass in plain code: header blocks are short, and `indexOf` per line is a call out.
  // Only CRs may stand on an empty line: they are dropped from the header part.
  let empty = true;
  for (let i = 0; i < output.length; i++) {
    const byte = output[i];
    if (byte === 0x0a) {
      if (empty) return i + 1;
      empty = true;
    } else if (byte !== 0x0d) empty = false;
  }
  return -1;
}

/**
 * `bytes` as a string of one character per byte (Latin-1): header values reach the client
 * byte for byte, UTF-8 included, since a Response header is such a byte string.
 */
function byteString(bytes: Uint8Array): string {
  let text = "";
  for (let at = 0; at < bytes.length; at += 8192) {
    text += String.fromCharCode.apply(null, bytes.subarray(at, at + 8192) as unknown as number[]);
  }
  return text;
}

/** The header lines before `end` (as found by {@link bodyStart}), CRs dropped. */
export function headerLines(output: Uint8Array, end: number): string[] {
  let text = byteString(output.subarray(0, end));
  if (text.includes("\r")) text = text.replaceAll("\r", "");
  return text.split("\n").filter((line) => line !== "");
}

/** A header name Headers accepts: an RFC 9110 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/**
 * What a header value may not hold (RFC 9110 field-value: visible ASCII, obs-text, space and
 * tab): control characters, DEL, and anything that is not one byte.
 */
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/**
 * `text` without the spaces and tabs around it (HTTP's optional whitespace). Not `trim()`:
 * that also drops bytes such as 0xA0, which may be part of a UTF-8 character.
 */
function trimOws(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && (text[start] === " " || text[start] === "\t")) start++;
  while (end > start && (text[end - 1] === " " || text[end - 1] === "\t")) end--;
  return text.slice(start, end);
}

function errorOutput(status: number, body: string, warnings: string[]): CgiOutput {
  return {
    response: new Response(body, { status, headers: { "content-type": "text/plain" } }),
    warnings,
  };
}

/**
 * Response headers as Response accepts them: a record when every name is distinct (the
 * cheaper form for it to read), else name/value pairs.
 */
export type HeaderList = Record<string, string> | [string, string][];

/** A parsed header block: the status and headers to answer with, or an error response. */
export type CgiHead =
  | {
    status: number;
    headers: HeaderList;
    warnings: string[];
    /**
     * The `Content-Length` the module declared. It is not sent: the response carries the
     * length of what the module really wrote (or is streamed), and a mismatch is logged.
     */
    declaredLength?: number;
    error?: undefined;
  }
  | { error: CgiOutput };

/** The log line for a module whose `Content-Length` was not what it wrote. */
export function lengthMismatch(declared: number, written: number): string {
  return `module declared Content-Length ${declared} but wrote ${written} body bytes; ` +
    "the real length was sent";
}

/** Interprets a module's header lines as WAGI does, with our fixes (docs/wagi.md, "Responses"). */
export function parseCgiHead(lines: readonly string[]): CgiHead {
  const warnings: string[] = [];
  // Plain pairs, checked here as Headers would: cheaper than a Headers object per response.
  const headers: [string, string][] = [];
  const names = new Set<string>();
  let status: number | undefined;
  let hasContentType = false;
  let hasLocation = false;
  let declaredLength: number | undefined;

  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon === -1) {
      warnings.push(`header line without ':' skipped: ${JSON.stringify(line)}`);
      continue;
    }
    const name = trimOws(line.slice(0, colon));
    const value = trimOws(line.slice(colon + 1));
    const lower = name.toLowerCase();
    if (lower === "status") {
      const code = value.match(/^\d+/);
      const parsed = code ? Number(code[0]) : NaN;
      if (!(parsed >= 200 && parsed <= 599)) {
        return {
          error: errorOutput(502, "Bad Gateway\n", [
            ...warnings,
            `module sent an unusable Status header: ${JSON.stringify(value)}`,
          ]),
        };
      }
      status = parsed;
      continue;
    }
    if (lower === "content-length") {
      // The server says how long the body is, not the module (see CgiHead).
      declaredLength = /^\d+$/.test(value) ? Number(value) : NaN;
      continue;
    }
    if (TOKEN.test(name) && !BAD_VALUE.test(value)) {
      headers.push([name, value]);
      names.add(lower);
    } else {
      return {
        error: errorOutput(500, "Internal Server Error\n", [
          ...warnings,
          `module sent an invalid header: ${JSON.stringify(line)}`,
        ]),
      };
    }
    if (lower === "content-type") hasContentType = true;
    if (lower === "location") hasLocation = true;
  }

  if (!hasContentType && !hasLocation && status === undefined) {
    return { error: errorOutput(500, MISSING_CONTENT_TYPE, [...warnings, MISSING_CONTENT_TYPE]) };
  }
  return {
    status: status ?? (hasLocation ? 302 : 200),
    headers: names.size === headers.length ? Object.fromEntries(headers) : headers,
    warnings,
    declaredLength,
  };
}

/** The response for a parsed head and a body; statuses that allow no body get none. */
export function cgiResponse(
  head: { status: number; headers: HeaderList },
  body: BodyInit | null,
): Response {
  const allowed = !NULL_BODY_STATUSES.has(head.status);
  if (!allowed && body instanceof ReadableStream) body.cancel().catch(() => {});
  return new Response(allowed ? body : null, { status: head.status, headers: head.headers });
}

/** Header blocks up to this many bytes are remembered with what they parse to. */
const MAX_REMEMBERED_HEAD_BYTES = 512;
const MAX_REMEMBERED_HEADS = 256;

/** A header block parsed without warnings, kept with its bytes to compare against. */
interface RememberedHead {
  bytes: Uint8Array;
  status: number;
  headers: HeaderList;
}

/** FNV-1a over `bytes[0, end)`. */
function headHash(bytes: Uint8Array, end: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < end; i++) hash = Math.imul(hash ^ bytes[i], 0x01000193);
  return hash >>> 0;
}

/** Bodies up to this size that are plain ASCII are handed to Response as text. */
const MAX_TEXT_BODY = 4096;

/** A remembered head has no warnings; shared, and never written to. */
const NO_WARNINGS: string[] = Object.freeze([]) as unknown as string[];

/**
 * Turns a module's whole stdout into a Response, as WAGI does with our fixes
 * (docs/wagi.md, "Responses"). A module usually prints the same header block every time, and
 * parsing is a pure function of its bytes: heads parsed without warnings are remembered by a
 * hash of those bytes (hashing and comparing them costs less than a string key).
 */
export class CgiOutputParser {
  #remembered = new Map<number, RememberedHead>();
  /** The char codes of a text body, reused: `fromCharCode.apply` reads a plain array fastest. */
  #bodyCodes: number[] = [];

  /** The remembered head whose bytes are exactly `bytes[0, end)`, if any. */
  #rememberedHead(bytes: Uint8Array, end: number, hash: number): RememberedHead | undefined {
    const found = this.#remembered.get(hash);
    if (found === undefined || found.bytes.length !== end) return undefined;
    const kept = found.bytes;
    for (let i = 0; i < end; i++) if (kept[i] !== bytes[i]) return undefined;
    return found;
  }

  /** The response (or error response) for a module's whole stdout, and what to log. */
  parse(stdout: Uint8Array<ArrayBuffer>): CgiOutput {
    const start = bodyStart(stdout);
    // No blank line: the whole output is the body and there are no headers.
    if (start === -1) return this.#parsedOutput(parseCgiHead([]), stdout);
    const hash = start <= MAX_REMEMBERED_HEAD_BYTES ? headHash(stdout, start) : undefined;
    const remembered = hash === undefined ? undefined : this.#rememberedHead(stdout, start, hash);
    if (remembered) {
      return {
        response: cgiResponse(remembered, this.#textOrBytes(stdout.subarray(start))),
        warnings: NO_WARNINGS,
      };
    }
    const head = parseCgiHead(headerLines(stdout, start));
    const body = stdout.subarray(start);
    if (!head.error && head.declaredLength !== undefined && head.declaredLength !== body.length) {
      head.warnings.push(lengthMismatch(head.declaredLength, body.length));
    }
    // A head with a declared length is not remembered: each body is checked against it.
    if (
      hash !== undefined && !head.error && head.warnings.length === 0 &&
      head.declaredLength === undefined
    ) {
      if (this.#remembered.size >= MAX_REMEMBERED_HEADS) this.#remembered.clear();
      // Frozen: every response built from it only reads it.
      Object.freeze(head.headers);
      const bytes = stdout.slice(0, start);
      this.#remembered.set(hash, { bytes, status: head.status, headers: head.headers });
    }
    return this.#parsedOutput(head, body);
  }

  #parsedOutput(head: CgiHead, body: Uint8Array<ArrayBuffer>): CgiOutput {
    if (head.error) return head.error;
    return { response: cgiResponse(head, this.#textOrBytes(body)), warnings: head.warnings };
  }

  /**
   * `body` as a string when it is short and all ASCII, so that it reads back as the same
   * bytes: Deno sends a string body without the buffer a byte body costs it. Otherwise the
   * bytes.
   */
  #textOrBytes(body: Uint8Array<ArrayBuffer>): string | Uint8Array<ArrayBuffer> {
    if (body.length > MAX_TEXT_BODY) return body;
    const codes = this.#bodyCodes;
    codes.length = body.length;
    for (let i = 0; i < body.length; i++) {
      const code = body[i];
      if (code > 0x7f) return body;
      codes[i] = code;
    }
    return String.fromCharCode.apply(null, codes);
  }
}
