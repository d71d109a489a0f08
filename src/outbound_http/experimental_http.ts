/**
 * The `wasi_experimental_http` imports (docs/wagi.md, "Outbound HTTP"): outbound HTTP requests
 * for modules, made with `fetch`. The guest sees synchronous calls; with JavaScript Promise
 * Integration the guest is suspended while a request is in flight, so the thread it runs on
 * stays free.
 * @module
 */

import type { GuestMemory } from "../wasi/memory.ts";
import { GuestMemory as Memory } from "../wasi/memory.ts";
import { allowList } from "./allowed_hosts.ts";
import { HttpError, type HttpErrorCode, OutboundHttpError } from "./errors.ts";
import { Errno } from "../wasi/errno.ts";
import type { OutboundOptions } from "./names.ts";

/** How many redirects are followed, each to an allowed host only. */
const MAX_REDIRECTS = 10;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** An HTTP method must be a token (RFC 9110). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

interface OpenResponse {
  status: number;
  headers: Headers;
  reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  leftover: Uint8Array;
  received: number;
  abort: AbortController;
  /** Aborts the body read at the deadline; cleared once the response is closed or read. */
  deadline: ReturnType<typeof setTimeout>;
}

/** Lets go of an open response: its read is aborted and its deadline cleared. */
function release(found: OpenResponse): void {
  clearTimeout(found.deadline);
  found.abort.abort();
  found.reader?.cancel().catch(() => {});
}

// JavaScript Promise Integration, not yet in TypeScript's WebAssembly types.
// deno-lint-ignore no-explicit-any
type SuspendingConstructor = new (fn: (...args: any[]) => Promise<number>) => object;
const JSPI = WebAssembly as unknown as {
  Suspending: SuspendingConstructor;
  promising: (fn: unknown) => (...args: unknown[]) => Promise<unknown>;
};

/** Wraps a guest export so that calling it lets suspending imports wait for promises. */
export function promising(fn: unknown): () => Promise<unknown> {
  return JSPI.promising(fn) as () => Promise<unknown>;
}

/** The error code for a failure inside an import. */
function codeOf(error: unknown): HttpErrorCode {
  if (error instanceof OutboundHttpError) return error.code;
  if (error instanceof RangeError) return HttpError.MEMORY_ACCESS;
  const errno = (error as { errno?: unknown })?.errno;
  if (typeof errno === "number") return HttpError.MEMORY_ACCESS;
  return HttpError.RUNTIME_ERROR;
}

/** Parses the guest's `name:value\n` header lines; INVALID_ENCODING when one is not. */
export function parseHeaderLines(text: string): Headers {
  const headers = new Headers();
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0) throw new OutboundHttpError(HttpError.INVALID_ENCODING);
    try {
      headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
    } catch {
      throw new OutboundHttpError(HttpError.INVALID_ENCODING);
    }
  }
  return headers;
}

/** How a run's outbound HTTP learns that the guest must stop. */
export interface HttpStop {
  /** Throws once the guest must stop: no new call starts. */
  check(): void;
  /** Aborted once the guest must stop: requests and body reads in flight end. */
  signal: AbortSignal;
}

/** The outbound HTTP imports of one guest run, and a way to close what it left open. */
export function outboundHttpImports(
  memory: GuestMemory,
  options: OutboundOptions,
  stop?: HttpStop,
) {
  const allowed = allowList(options.allowedHosts);
  const open = new Map<number, OpenResponse>();
  let nextHandle = 1;

  const text = (ptr: number, len: number): string => {
    try {
      return memory.string(ptr, len);
    } catch (error) {
      const errno = (error as { errno?: number }).errno;
      // memory.string fails with ILSEQ for bad UTF-8, FAULT for a bad pointer.
      throw new OutboundHttpError(errno === Errno.ILSEQ ? HttpError.UTF8 : HttpError.MEMORY_ACCESS);
    }
  };
  const response = (handle: number): OpenResponse => {
    const found = open.get(handle);
    if (!found) throw new OutboundHttpError(HttpError.INVALID_HANDLE);
    return found;
  };
  const sync = <A extends number[]>(fn: (...args: A) => void) => (...args: A): number => {
    stop?.check();
    if (!memory.attached) return HttpError.MEMORY_NOT_FOUND;
    try {
      fn(...args);
      return HttpError.SUCCESS;
    } catch (error) {
      return codeOf(error);
    }
  };
  const suspending = <A extends number[]>(fn: (...args: A) => Promise<void>) =>
    new JSPI.Suspending(async (...args: A): Promise<number> => {
      stop?.check();
      if (!memory.attached) return HttpError.MEMORY_NOT_FOUND;
      try {
        await fn(...args);
      } catch (error) {
        // A guest stopped while it waited does not get an answer: it unwinds.
        stop?.check();
        return codeOf(error);
      }
      stop?.check();
      return HttpError.SUCCESS;
    });

  /** Sends the request, following redirects only to allowed hosts. */
  const send = async (url: URL, init: RequestInit, signal: AbortSignal): Promise<Response> => {
    for (let redirects = 0;; redirects++) {
      let answer: Response;
      try {
        answer = await fetch(url, { ...init, redirect: "manual", signal });
      } catch (error) {
        throw new OutboundHttpError(HttpError.REQUEST_ERROR, (error as Error).message);
      }
      const location = answer.headers.get("location");
      if (!REDIRECT_STATUSES.has(answer.status) || location === null) return answer;
      await answer.body?.cancel();
      if (redirects >= MAX_REDIRECTS) throw new OutboundHttpError(HttpError.REQUEST_ERROR);
      url = new URL(location, url);
      if (!allowed.allows(url)) throw new OutboundHttpError(HttpError.DESTINATION_NOT_ALLOWED);
      if (
        answer.status === 303 || ((answer.status === 301 || answer.status === 302) &&
          init.method === "POST")
      ) {
        init = { ...init, method: "GET", body: undefined };
      }
    }
  };

  const imports = {
    req: suspending(async (
      urlPtr: number,
      urlLen: number,
      methodPtr: number,
      methodLen: number,
      headersPtr: number,
      headersLen: number,
      bodyPtr: number,
      bodyLen: number,
      statusPtr: number,
      handlePtr: number,
    ) => {
      const urlText = text(urlPtr, urlLen);
      const method = text(methodPtr, methodLen);
      if (!TOKEN.test(method)) throw new OutboundHttpError(HttpError.INVALID_METHOD);
      let url: URL;
      try {
        url = new URL(urlText);
      } catch {
        throw new OutboundHttpError(HttpError.INVALID_URL);
      }
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        throw new OutboundHttpError(HttpError.INVALID_URL);
      }
      if (!allowed.allows(url)) throw new OutboundHttpError(HttpError.DESTINATION_NOT_ALLOWED);
      if (options.maxConcurrency !== undefined && open.size >= options.maxConcurrency) {
        throw new OutboundHttpError(HttpError.TOO_MANY_SESSIONS);
      }
      const headers = parseHeaderLines(text(headersPtr, headersLen));
      // Copied now: guest memory is the guest's again once the request is under way.
      const upper = method.toUpperCase();
      const body = bodyLen > 0 && upper !== "GET" && upper !== "HEAD"
        ? memory.slice(bodyPtr, bodyLen).slice()
        : undefined;
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), options.timeoutMs);
      const signal = stop ? AbortSignal.any([abort.signal, stop.signal]) : abort.signal;
      const answer = await send(url, { method, headers, body }, signal).finally(() =>
        clearTimeout(timer)
      );
      const handle = nextHandle++;
      open.set(handle, {
        status: answer.status,
        headers: answer.headers,
        reader: answer.body?.getReader(),
        leftover: new Uint8Array(),
        received: 0,
        abort,
        // Reading the body is bounded by the same timeout, counted from now.
        deadline: setTimeout(() => abort.abort(), options.timeoutMs),
      });
      memory.setU16(statusPtr, answer.status);
      memory.setU32(handlePtr, handle);
    }),
    close: sync((handle: number) => {
      const found = response(handle);
      open.delete(handle);
      release(found);
    }),
    header_get: sync((
      handle: number,
      namePtr: number,
      nameLen: number,
      valuePtr: number,
      valueLen: number,
      writtenPtr: number,
    ) => {
      const found = response(handle);
      const value = found.headers.get(text(namePtr, nameLen));
      if (value === null) throw new OutboundHttpError(HttpError.HEADER_NOT_FOUND);
      const bytes = Memory.encode(value);
      if (bytes.length > valueLen) throw new OutboundHttpError(HttpError.BUFFER_TOO_SMALL);
      memory.write(valuePtr, bytes);
      memory.setU32(writtenPtr, bytes.length);
    }),
    headers_get_all: sync((handle: number, bufPtr: number, bufLen: number, writtenPtr: number) => {
      const found = response(handle);
      let all = "";
      for (const [name, value] of found.headers) all += `${name}:${value}\n`;
      const bytes = Memory.encode(all);
      if (bytes.length > bufLen) throw new OutboundHttpError(HttpError.BUFFER_TOO_SMALL);
      memory.write(bufPtr, bytes);
      memory.setU32(writtenPtr, bytes.length);
    }),
    body_read: suspending(
      async (handle: number, bufPtr: number, bufLen: number, writtenPtr: number) => {
        const found = response(handle);
        if (found.leftover.length === 0 && found.reader) {
          let chunk: ReadableStreamReadResult<Uint8Array>;
          try {
            chunk = await found.reader.read();
          } catch (error) {
            throw new OutboundHttpError(HttpError.REQUEST_ERROR, (error as Error).message);
          }
          if (chunk.done) {
            found.reader = undefined;
            clearTimeout(found.deadline);
          } else {
            found.received += chunk.value.length;
            if (found.received > options.maxResponseBytes) {
              found.abort.abort();
              throw new OutboundHttpError(HttpError.REQUEST_ERROR, "response too large");
            }
            found.leftover = chunk.value;
          }
        }
        const n = Math.min(bufLen, found.leftover.length);
        memory.write(bufPtr, found.leftover.subarray(0, n));
        found.leftover = found.leftover.subarray(n);
        memory.setU32(writtenPtr, n);
      },
    ),
  };

  return {
    imports,
    /** Aborts every response the guest left open. */
    closeAll(): void {
      for (const found of open.values()) release(found);
      open.clear();
    },
  };
}
