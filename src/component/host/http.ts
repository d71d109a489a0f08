/**
 * `wasi:http/types` for components serving requests (the `wasi:http/proxy` world): the request
 * comes from the server as a {@link HttpRequestHead} and a body source; the response goes out
 * as a CGI header block and body on the run's stdout, so that it takes the same way out as a
 * WAGI module's (streaming, `--max-response`, a failure after the head cuts the stream). Header
 * names the CGI block would read differently (`status`) or that belong to the connection are
 * refused (`forbidden`), as wasmtime refuses the connection's.
 * @module
 */

import type { InputSource, OutputSink } from "../../wasi/descriptors.ts";
import type { HttpRequestHead } from "../../run/module_component.ts";
import {
  Failure,
  InputStream,
  IoError,
  OutputStream,
  Pollable,
  RESOURCE_COST,
  spend,
} from "./io.ts";

/** An RFC 9110 token: what a field name may be. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Names a component may not set: the connection's, and the CGI block's `status`. */
const FORBIDDEN = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
  "status",
]);

/** A field value: no control characters but tab, no DEL. */
// deno-lint-ignore no-control-regex -- control characters are exactly what it refuses
const VALID_VALUE = /^[^\x00-\x08\x0a-\x1f\x7f]*$/;

/**
 * `bytes` as a string of one character per byte: field values are bytes, and a short string
 * costs the engine far less to make and keep than a typed array of its own.
 */
function byteString(bytes: Uint8Array): string {
  let text = "";
  for (let at = 0; at < bytes.length; at += 4096) {
    const part = bytes.subarray(at, at + 4096) as unknown as number[];
    text += String.fromCharCode.apply(null, part);
  }
  return text;
}

/** The bytes of a string of one character per byte (see {@link byteString}). */
function bytesOf(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

/** The CGI header block of a response: `Status`, then every field, values byte for byte. */
export function cgiHead(status: number, fields: Fields): Uint8Array {
  // Names are tokens (ASCII); values are bytes, one character each, and go out as they are.
  let head = `Status: ${status}\n`;
  for (let i = 0; i < fields.names.length; i++) {
    head += `${fields.names[i]}: ${fields.values[i]}\n`;
  }
  return bytesOf(head + "\n");
}

/**
 * `wasi:http/types.fields` (headers and trailers): names as given, compared without case;
 * values kept as byte strings (see {@link byteString}), handed to the guest as bytes.
 */
export class Fields {
  names: string[] = [];
  values: string[] = [];
  immutable = false;

  constructor() {
    spend(RESOURCE_COST);
  }

  /** The bytes of its names and values (counted against the run's budget). */
  get heldBytes(): number {
    let held = 0;
    for (let i = 0; i < this.names.length; i++) {
      held += this.names[i].length + this.values[i].length;
    }
    return held;
  }

  /** Dropped by the guest: what it counted is given back. */
  [Symbol.dispose](): void {
    spend(-(RESOURCE_COST + this.heldBytes));
  }

  static fromList(entries: [string, Uint8Array][]): Fields {
    const fields = new Fields();
    for (const [name, value] of entries) fields.append(name, value);
    return fields;
  }

  /** Headers the server hands in (a request's, a response's): read-only to the guest. */
  static received(headers: [string, string][]): Fields {
    const fields = new Fields();
    for (const [name, value] of headers) {
      fields.names.push(name);
      // Header values are byte strings already.
      fields.values.push(value);
    }
    fields.immutable = true;
    return fields;
  }

  /** Checks `name` (and `value`, copied out of the guest's bytes) may be set; the value. */
  #check(name: string, value?: Uint8Array): string {
    if (this.immutable) throw new Failure({ tag: "immutable" });
    const text = value === undefined ? "" : byteString(value);
    if (!TOKEN.test(name) || !VALID_VALUE.test(text)) {
      throw new Failure({ tag: "invalid-syntax" });
    }
    if (FORBIDDEN.has(name.toLowerCase())) throw new Failure({ tag: "forbidden" });
    return text;
  }

  get(name: string): Uint8Array[] {
    const lower = name.toLowerCase();
    const found: Uint8Array[] = [];
    for (let i = 0; i < this.names.length; i++) {
      if (this.names[i].toLowerCase() === lower) found.push(bytesOf(this.values[i]));
    }
    return found;
  }
  has(name: string): boolean {
    const lower = name.toLowerCase();
    return this.names.some((n) => n.toLowerCase() === lower);
  }
  set(name: string, values: Uint8Array[]): void {
    this.#check(name);
    const texts = values.map((value) => this.#check(name, value));
    this.#remove(name);
    for (const text of texts) {
      spend(name.length + text.length);
      this.names.push(name);
      this.values.push(text);
    }
  }
  delete(name: string): void {
    this.#check(name);
    this.#remove(name);
  }
  append(name: string, value: Uint8Array): void {
    const text = this.#check(name, value);
    spend(name.length + text.length);
    this.names.push(name);
    this.values.push(text);
  }
  entries(): [string, Uint8Array][] {
    return this.names.map((name, i) => [name, bytesOf(this.values[i])]);
  }
  /** Its names and values as strings (values one character per byte): for `fetch`. */
  textEntries(): [string, string][] {
    return this.names.map((name, i) => [name, this.values[i]]);
  }
  clone(): Fields {
    const copy = new Fields();
    for (let i = 0; i < this.names.length; i++) spend(this.names[i].length + this.values[i].length);
    copy.names = [...this.names];
    copy.values = [...this.values];
    return copy;
  }
  #remove(name: string): void {
    const lower = name.toLowerCase();
    for (let i = this.names.length - 1; i >= 0; i--) {
      if (this.names[i].toLowerCase() === lower) {
        this.names.splice(i, 1);
        this.values.splice(i, 1);
      }
    }
  }
}

const METHODS = ["get", "head", "post", "put", "delete", "connect", "options", "trace", "patch"];

/** `wasi:http/types.incoming-request`: the request being served. */
export class IncomingRequest {
  #consumed = false;
  constructor(readonly head: HttpRequestHead, readonly body: InputSource) {}

  method(): { tag: string; val?: string } {
    const lower = this.head.method.toLowerCase();
    return METHODS.includes(lower) && lower.toUpperCase() === this.head.method
      ? { tag: lower }
      : { tag: "other", val: this.head.method };
  }
  pathWithQuery(): string | undefined {
    return this.head.pathWithQuery;
  }
  scheme(): { tag: string } {
    return { tag: this.head.scheme === "https" ? "HTTPS" : "HTTP" };
  }
  authority(): string | undefined {
    return this.head.authority;
  }
  headers(): Fields {
    return Fields.received(this.head.headers);
  }
  consume(): IncomingBody {
    if (this.#consumed) throw new Failure(undefined);
    this.#consumed = true;
    const source = this.body;
    return new IncomingBody(() => new InputStream(source));
  }
}

/**
 * `wasi:http/types.incoming-body`: a request's body (or an outbound response's), read through
 * one stream.
 */
export class IncomingBody {
  #streamed = false;
  constructor(readonly open: () => InputStream) {}

  stream(): InputStream {
    if (this.#streamed) throw new Failure(undefined);
    this.#streamed = true;
    return this.open();
  }
  static finish(_body: IncomingBody): FutureTrailers {
    return new FutureTrailers();
  }
}

/** `wasi:http/types.future-trailers`: a request has none here. */
export class FutureTrailers {
  #taken = false;
  subscribe(): Pollable {
    return new Pollable();
  }
  get(): unknown {
    if (this.#taken) return { tag: "err", val: undefined };
    this.#taken = true;
    return { tag: "ok", val: { tag: "ok", val: undefined } };
  }
}

/**
 * Where a response's body goes: the run's stdout once the response is set (head first), held
 * until then (a guest may write its body before it hands the response over).
 */
export class BodyPipe {
  #taken = false;
  sink: OutputSink | undefined;
  held: Uint8Array[] = [];
  heldBytes = 0;

  /** The body writing into this pipe: its owner hands it out once. */
  body(): OutgoingBody {
    if (this.#taken) throw new Failure(undefined);
    this.#taken = true;
    return new OutgoingBody(this);
  }

  /** Everything held, in one piece (an outgoing request's body, sent whole). */
  whole(): Uint8Array<ArrayBuffer> {
    const all = new Uint8Array(this.heldBytes);
    let at = 0;
    for (const bytes of this.held) {
      all.set(bytes, at);
      at += bytes.length;
    }
    return all;
  }

  write(bytes: Uint8Array): void {
    if (this.sink) {
      this.sink.write(bytes, 0, bytes.length);
      return;
    }
    if (this.heldBytes + bytes.length > MAX_HELD_BODY) {
      throw new Failure({
        tag: "last-operation-failed",
        val: new IoError("more than 1 MiB of body held (before a response is set, or to send)"),
      });
    }
    // Counted with the run's other holdings: a guest may fill many bodies it never sends.
    spend(bytes.length);
    this.heldBytes += bytes.length;
    this.held.push(bytes.slice());
  }

  open(sink: OutputSink): void {
    this.sink = sink;
    for (const bytes of this.held) sink.write(bytes, 0, bytes.length);
    spend(-this.heldBytes);
    this.held = [];
    this.heldBytes = 0;
  }
}

/** Body bytes held at most while the response is not set yet. */
const MAX_HELD_BODY = 1024 * 1024;

/** `wasi:http/types.outgoing-response`: the response a guest builds. */
export class OutgoingResponse {
  status = 200;
  readonly pipe = new BodyPipe();
  constructor(readonly fields: Fields) {
    fields.immutable = true;
  }

  statusCode(): number {
    return this.status;
  }
  setStatusCode(code: number): void {
    if (code < 100 || code > 599) throw new Failure(undefined);
    this.status = code;
  }
  headers(): Fields {
    return this.fields;
  }
  body(): OutgoingBody {
    return this.pipe.body();
  }
}

/** `wasi:http/types.outgoing-body`: written through one stream, then finished. */
export class OutgoingBody {
  #stream: OutputStream | undefined;
  finished = false;
  constructor(readonly pipe: BodyPipe) {}

  write(): OutputStream {
    if (this.#stream) throw new Failure(undefined);
    const pipe = this.pipe;
    this.#stream = new OutputStream({ write: (m, at, n) => pipe.write(m.subarray(at, at + n)) });
    return this.#stream;
  }
  static finish(body: OutgoingBody, _trailers: Fields | undefined): void {
    // A CGI response has no trailers: they are dropped.
    body.#stream?.close();
    body.finished = true;
  }
}

/** How a run learns what its guest answered. */
export interface ResponseTarget {
  /** The run's stdout: the CGI head, then the body. */
  stdout: OutputSink;
  /** Told the error code when the guest answers with an error instead of a response. */
  failed(why: string): void;
  /** Set once a response (or an error) was handed over. */
  set: boolean;
}

/** `wasi:http/types.response-outparam`: where the guest hands its response over, once. */
export class ResponseOutparam {
  constructor(readonly target: ResponseTarget) {}

  static set(
    param: ResponseOutparam,
    response: { tag: "ok"; val: OutgoingResponse } | { tag: "err"; val: { tag: string } },
  ): void {
    const target = param.target;
    if (target.set) throw new Error("response-outparam.set called twice");
    target.set = true;
    if (response.tag === "err") {
      target.failed(`the component answered with error-code ${JSON.stringify(response.val)}`);
      return;
    }
    const answer = response.val;
    const bytes = cgiHead(answer.status, answer.fields);
    target.stdout.write(bytes, 0, bytes.length);
    answer.pipe.open(target.stdout);
  }
}

/** `wasi:http/types.http-error-code`: no I/O error here carries an HTTP error code. */
function httpErrorCode(_error: IoError): undefined {
  return undefined;
}

/** The `wasi:http/types` interface, as jco's generated code imports it. */
export function httpTypesImports() {
  return {
    "wasi:http/types": {
      Fields,
      IncomingRequest,
      IncomingBody,
      FutureTrailers,
      OutgoingResponse,
      OutgoingBody,
      ResponseOutparam,
      httpErrorCode,
    },
  };
}
