/**
 * `wasi:http/outgoing-handler` and the outbound half of `wasi:http/types`, with `fetch`, under
 * the entry's `allowed_hosts`, `http_timeout`, `http_max_response` and `http_max_concurrency`
 * (as for `wasi_experimental_http`). Waiting happens under JavaScript Promise Integration: a
 * component that imports the handler is transpiled so that its blocking calls (a pollable's
 * `block`, `poll`, a stream's `blocking-read`) may return promises, and its guest is suspended
 * meanwhile. Redirects are not followed: the guest gets the 3xx, as from wasmtime. A request's
 * body is sent whole (1 MiB at most).
 * @module
 */

import { allowList } from "../../outbound_http/allowed_hosts.ts";
import type { OutboundOptions } from "../../outbound_http/names.ts";
import { Failure, InputStream, IoError, Pollable, RESOURCE_COST, spend } from "./io.ts";
import { BodyPipe, Fields, IncomingBody, OutgoingBody } from "./http.ts";

/** A `wasi:http/types.error-code`. */
type ErrorCode = { tag: string; val?: unknown };

/** A pollable ready once `promise` settled: blocking on it waits for that (under JSPI). */
export class PromisePollable extends Pollable {
  #settled = false;
  readonly settled: Promise<void>;
  constructor(promise: Promise<unknown>) {
    super();
    this.settled = promise.then(() => {}, () => {}).finally(() => {
      this.#settled = true;
    });
  }
  override ready(): boolean {
    return this.#settled;
  }
  /** Undefined when ready; else a promise jco's suspending wrapper awaits. */
  override block(): void {
    return (this.#settled ? undefined : this.settled) as unknown as void;
  }
  override waitFor(): Promise<void> | undefined {
    return this.#settled ? undefined : this.settled;
  }
}

/** `wasi:http/types.request-options`: accepted; the entry's `http_timeout` bounds them all. */
export class RequestOptions {
  #timeouts: (bigint | undefined)[] = [undefined, undefined, undefined];
  constructor() {
    spend(RESOURCE_COST);
  }
  connectTimeout(): bigint | undefined {
    return this.#timeouts[0];
  }
  setConnectTimeout(duration: bigint | undefined): void {
    this.#timeouts[0] = duration;
  }
  firstByteTimeout(): bigint | undefined {
    return this.#timeouts[1];
  }
  setFirstByteTimeout(duration: bigint | undefined): void {
    this.#timeouts[1] = duration;
  }
  betweenBytesTimeout(): bigint | undefined {
    return this.#timeouts[2];
  }
  setBetweenBytesTimeout(duration: bigint | undefined): void {
    this.#timeouts[2] = duration;
  }
}

/** `wasi:http/types.outgoing-request`: a request a guest builds. */
export class OutgoingRequest {
  #method: { tag: string; val?: string } = { tag: "get" };
  #path: string | undefined;
  #scheme: { tag: string; val?: string } | undefined;
  #authority: string | undefined;
  readonly pipe = new BodyPipe();
  constructor(readonly fields: Fields) {
    fields.immutable = true;
  }
  method() {
    return this.#method;
  }
  setMethod(method: { tag: string; val?: string }): void {
    if (method.tag === "other" && !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(method.val ?? "")) {
      throw new Failure(undefined);
    }
    this.#method = method;
  }
  pathWithQuery(): string | undefined {
    return this.#path;
  }
  setPathWithQuery(path: string | undefined): void {
    this.#path = path;
  }
  scheme() {
    return this.#scheme;
  }
  setScheme(scheme: { tag: string; val?: string } | undefined): void {
    this.#scheme = scheme;
  }
  authority(): string | undefined {
    return this.#authority;
  }
  setAuthority(authority: string | undefined): void {
    this.#authority = authority;
  }
  headers(): Fields {
    return this.fields;
  }
  body(): OutgoingBody {
    return this.pipe.body();
  }
  /** The URL it is for; throws `HTTP-request-URI-invalid` when it makes none. */
  url(): URL {
    const scheme = this.#scheme?.tag === "HTTPS"
      ? "https"
      : this.#scheme?.tag === "other"
      ? this.#scheme.val
      : "http";
    try {
      if (scheme !== "http" && scheme !== "https") throw new Error("scheme");
      return new URL(`${scheme}://${this.#authority ?? ""}${this.#path ?? "/"}`);
    } catch {
      throw new Failure({ tag: "HTTP-request-URI-invalid" });
    }
  }
  /** The method as `fetch` takes it. */
  methodName(): string {
    return this.#method.tag === "other" ? this.#method.val! : this.#method.tag.toUpperCase();
  }
}

/** A response's body as the guest reads it, from `fetch`, capped at `maxBytes`. */
export class FetchBodyStream extends InputStream {
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #left: Uint8Array = new Uint8Array(0);
  #ended = false;
  #received = 0;
  #pending: Promise<void> | undefined;
  #failure: IoError | undefined;

  constructor(
    body: ReadableStream<Uint8Array> | null,
    readonly maxBytes: number,
    readonly onEnd: () => void,
  ) {
    super({ read: () => 0, available: () => 0 });
    this.#reader = body?.getReader();
    if (!this.#reader) this.#end();
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.onEnd();
  }

  /** Reads the next chunk into `#left` (one read at a time). */
  #fill(): Promise<void> {
    this.#pending ??= this.#reader!.read().then(({ value, done }) => {
      if (done) this.#end();
      else {
        this.#received += value.length;
        if (this.#received > this.maxBytes) {
          this.#failure = new IoError(`response body over http_max_response (${this.maxBytes})`);
          this.#reader!.cancel().catch(() => {});
          this.#end();
        } else this.#left = value;
      }
    }, (error) => {
      this.#failure = new IoError(`response body: ${(error as Error).message}`);
      this.#end();
    }).finally(() => this.#pending = undefined);
    return this.#pending;
  }

  /** What is there now: bytes, nothing (come back later), or the end. */
  override read(len: bigint): Uint8Array {
    if (this.#left.length > 0) {
      const n = Math.min(this.#left.length, Number(len));
      const bytes = this.#left.slice(0, n);
      this.#left = this.#left.subarray(n);
      return bytes;
    }
    if (this.#failure) throw new Failure({ tag: "last-operation-failed", val: this.#failure });
    if (this.#ended) throw new Failure({ tag: "closed" });
    this.#fill();
    return new Uint8Array(0);
  }

  /** Waits for bytes or the end (a promise under JSPI), then reads. */
  override blockingRead(len: bigint): Uint8Array {
    if (this.#left.length > 0 || this.#ended || this.#failure) return this.read(len);
    return this.#fill().then(() => this.read(len)) as unknown as Uint8Array;
  }

  override subscribe(): Pollable {
    if (this.#left.length > 0 || this.#ended) return new Pollable();
    return new PromisePollable(this.#fill());
  }
}

/** `wasi:http/types.incoming-response`: what `fetch` answered. */
export class IncomingResponse {
  #consumed = false;
  constructor(readonly response: Response, readonly open: () => InputStream) {}
  status(): number {
    return this.response.status;
  }
  headers(): Fields {
    return Fields.received([...this.response.headers]);
  }
  consume(): IncomingBody {
    if (this.#consumed) throw new Failure(undefined);
    this.#consumed = true;
    return new IncomingBody(this.open);
  }
}

/** `wasi:http/types.future-incoming-response`: a response on its way. */
export class FutureIncomingResponse {
  #result: { tag: "ok"; val: IncomingResponse } | { tag: "err"; val: ErrorCode } | undefined;
  #taken = false;
  readonly arrived: Promise<void>;
  constructor(answer: Promise<IncomingResponse>) {
    spend(RESOURCE_COST);
    this.arrived = answer.then(
      (response) => void (this.#result = { tag: "ok", val: response }),
      (error) => void (this.#result = { tag: "err", val: errorCodeOf(error) }),
    );
  }
  subscribe(): Pollable {
    return new PromisePollable(this.arrived);
  }
  get(): unknown {
    if (this.#result === undefined) return undefined;
    if (this.#taken) return { tag: "err", val: undefined };
    this.#taken = true;
    return { tag: "ok", val: this.#result };
  }
}

/** The error code a failed `fetch` maps to. */
function errorCodeOf(error: unknown): ErrorCode {
  if (error instanceof Failure) return error.payload as ErrorCode;
  const name = (error as Error)?.name;
  if (name === "AbortError" || name === "TimeoutError") return { tag: "connection-timeout" };
  const message = String((error as Error)?.message ?? error);
  if (/refused/i.test(message)) return { tag: "connection-refused" };
  if (/dns|lookup|resolve/i.test(message)) {
    return { tag: "DNS-error", val: { rcode: undefined, infoCode: undefined } };
  }
  return { tag: "internal-error", val: message.slice(0, 200) };
}

/** What the outbound interfaces read of the run in progress. */
export interface OutboundRun {
  options: OutboundOptions;
  /** Aborted when the run is stopped: requests and body reads in flight end. */
  signal: AbortSignal;
  /** Responses whose bodies are still open (for `http_max_concurrency`). */
  open: number;
  /**
   * Set for a run that cannot wait for the network (a first try on the server's thread): no
   * request is made, the run is abandoned with what this returns (thrown), to be redone.
   */
  abandon?: () => Error;
}

/** `wasi:http/outgoing-handler`, answering from the run `run()` returns. */
export function outgoingImports(run: () => OutboundRun) {
  const allowLists = new WeakMap<OutboundOptions, ReturnType<typeof allowList>>();
  const allowed = (options: OutboundOptions) => {
    let list = allowLists.get(options);
    if (!list) allowLists.set(options, list = allowList(options.allowedHosts));
    return list;
  };
  const handle = (request: OutgoingRequest, _options?: RequestOptions) => {
    const current = run();
    if (current.abandon) throw current.abandon();
    const { options } = current;
    const url = request.url();
    if (!allowed(options).allows(url)) throw new Failure({ tag: "HTTP-request-denied" });
    if (options.maxConcurrency !== undefined && current.open >= options.maxConcurrency) {
      throw new Failure({ tag: "connection-limit-reached" });
    }
    const method = request.methodName();
    const headers = request.fields.textEntries();
    const body = method === "GET" || method === "HEAD"
      ? undefined
      : request.pipe.whole() as Uint8Array<ArrayBuffer>;
    // The whole exchange, body included, is bounded by http_timeout.
    const signal = AbortSignal.any([current.signal, AbortSignal.timeout(options.timeoutMs)]);
    current.open++;
    let closed = false;
    const close = () => {
      if (!closed) current.open--;
      closed = true;
    };
    const answer = fetch(url, { method, headers, body, redirect: "manual", signal }).then(
      (response) =>
        new IncomingResponse(
          response,
          () => new FetchBodyStream(response.body, options.maxResponseBytes, close),
        ),
      (error) => {
        close();
        throw error;
      },
    );
    return new FutureIncomingResponse(answer);
  };
  return {
    handler: { "wasi:http/outgoing-handler": { handle } },
    /** The resources of `wasi:http/types` outbound requests use. */
    types: { OutgoingRequest, RequestOptions, IncomingResponse, FutureIncomingResponse },
  };
}

/** The blocking calls that may wait on the network: made suspending under JSPI. */
export const ASYNC_IMPORTS = [
  "wasi:io/poll#poll",
  "wasi:io/poll#[method]pollable.block",
  "wasi:io/streams#[method]input-stream.blocking-read",
  "wasi:io/streams#[method]input-stream.blocking-skip",
];

/** The exports that run the guest, made promising under JSPI. */
export const ASYNC_EXPORTS = ["wasi:http/incoming-handler#handle", "wasi:cli/run#run"];
