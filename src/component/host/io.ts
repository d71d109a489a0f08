/**
 * `wasi:io` for components (errors, pollables, streams), over the byte sources and sinks the
 * preview1 host uses (wasi/descriptors.ts): a guest runs on a thread of its own (a pool
 * worker), so a blocking read or write blocks that thread and nothing else.
 * Resources are plain classes the jco-generated code wraps; a `result`'s error is thrown as
 * a {@link Failure} carrying its payload.
 * @module
 */

import type { InputSource, OutputSink } from "../../wasi/descriptors.ts";

/**
 * What one run may make the host hold at once: resources (each counts {@link RESOURCE_COST}),
 * header bytes and body bytes held, together; pollables and fields the guest drops are given
 * back. A guest creating them in a loop would otherwise grow the thread's memory until its
 * deadline; past this its host call fails, and the run with it. (What a guest leaves behind is
 * let go of by the runner as the run ends.)
 */
export const HOST_BUDGET = 8 * 1024 * 1024;
/** What one resource counts against {@link HOST_BUDGET}. */
export const RESOURCE_COST = 256;

let budgetLeft = HOST_BUDGET;

/** Gives the run about to start its whole {@link HOST_BUDGET} (one run at a time per thread). */
export function resetHostBudget(): void {
  budgetLeft = HOST_BUDGET;
}

/** Counts `units` against the run's budget; throws (failing the run) once it is spent. */
export function spend(units: number): void {
  budgetLeft -= units;
  if (budgetLeft < 0) {
    throw new Error(
      `the component made the host hold more than ${HOST_BUDGET} bytes of resources, headers ` +
        "and bodies in one request",
    );
  }
}

/** Thrown to make a host call return a `result`'s error case with `payload`. */
export class Failure {
  constructor(readonly payload: unknown) {}
}

/** `wasi:io/error.error`: what went wrong, for the guest's logs. */
export class IoError {
  constructor(readonly message: string) {}
  toDebugString(): string {
    return this.message;
  }
}

/** A `stream-error`: the stream is closed (or, with an error, failed). */
export type StreamError = { tag: "closed" } | { tag: "last-operation-failed"; val: IoError };

const CLOSED: StreamError = { tag: "closed" };

/**
 * `wasi:io/poll.pollable`. Streams here block instead of waiting for readiness, so theirs are
 * always ready; a clock's is ready at its instant, and blocking on it sleeps.
 */
export class Pollable {
  constructor(
    /** When it is ready (ms on `performance.now()`'s clock); 0: always. */
    readonly readyAt: number = 0,
    /** Sleeps `ms` (and throws once the guest must stop). */
    readonly sleep: (ms: number) => void = () => {},
  ) {
    spend(RESOURCE_COST);
  }
  ready(): boolean {
    return this.readyAt <= performance.now();
  }
  block(): void {
    const left = this.readyAt - performance.now();
    if (left > 0) this.sleep(left);
  }
  /** Dropped by the guest. */
  [Symbol.dispose](): void {
    spend(-RESOURCE_COST);
  }
  /** What to await for it to become ready, for a pollable that waits on a promise. */
  waitFor(): Promise<void> | undefined {
    return undefined;
  }
}

/**
 * `wasi:io/poll.poll`: the indices of the pollables ready, after waiting for the first. A
 * pollable whose `block` returns a promise (the network's, under JSPI) makes this one too.
 */
export function poll(pollables: Pollable[]): Uint32Array {
  if (pollables.length === 0) throw new Failure(undefined);
  const readyOnes = () => new Uint32Array(pollables.flatMap((p, i) => p.ready() ? [i] : []));
  const ready = readyOnes();
  if (ready.length > 0) return ready;
  const waits = pollables.map((p) => p.waitFor()).filter((w) => w !== undefined);
  if (waits.length > 0) {
    return Promise.race(waits).then(readyOnes) as unknown as Uint32Array;
  }
  pollables.reduce((a, b) => a.readyAt <= b.readyAt ? a : b).block();
  return readyOnes();
}

/** Most bytes one read hands back, whatever the guest asks for. */
const MAX_READ = 64 * 1024;

/** `wasi:io/streams.input-stream` over an {@link InputSource}. */
export class InputStream {
  #ended = false;
  constructor(readonly source: InputSource) {
    spend(RESOURCE_COST);
  }

  /** Reads what is there, waiting for some when none is (the guest's thread is its own). */
  read(len: bigint): Uint8Array {
    if (this.#ended) throw new Failure(CLOSED);
    const want = Number(len < BigInt(MAX_READ) ? len : BigInt(MAX_READ));
    if (want === 0) return new Uint8Array(0);
    const bytes = new Uint8Array(want);
    const got = this.source.read(bytes, 0, want);
    if (got === 0) {
      this.#ended = true;
      throw new Failure(CLOSED);
    }
    return got === want ? bytes : bytes.slice(0, got);
  }
  blockingRead(len: bigint): Uint8Array {
    return this.read(len);
  }
  skip(len: bigint): bigint {
    return BigInt(this.read(len).length);
  }
  blockingSkip(len: bigint): bigint {
    return this.skip(len);
  }
  subscribe(): Pollable {
    return new Pollable();
  }
}

/** Most bytes `check-write` permits at once (a sink takes any amount; this keeps copies small). */
const WRITE_BUDGET = 1024 * 1024;

/** `wasi:io/streams.output-stream` over an {@link OutputSink}. */
export class OutputStream {
  #closed = false;
  constructor(readonly sink: OutputSink, readonly onClose?: () => void) {
    spend(RESOURCE_COST);
  }

  checkWrite(): bigint {
    if (this.#closed) throw new Failure(CLOSED);
    return BigInt(WRITE_BUDGET);
  }
  write(contents: Uint8Array): void {
    if (this.#closed) throw new Failure(CLOSED);
    if (contents.length > 0) this.sink.write(contents, 0, contents.length);
  }
  blockingWriteAndFlush(contents: Uint8Array): void {
    this.write(contents);
  }
  flush(): void {
    if (this.#closed) throw new Failure(CLOSED);
  }
  blockingFlush(): void {
    this.flush();
  }
  subscribe(): Pollable {
    return new Pollable();
  }
  writeZeroes(len: bigint): void {
    this.write(new Uint8Array(Number(len < BigInt(WRITE_BUDGET) ? len : BigInt(WRITE_BUDGET))));
  }
  blockingWriteZeroesAndFlush(len: bigint): void {
    this.writeZeroes(len);
  }
  splice(from: InputStream, len: bigint): bigint {
    const bytes = from.read(len);
    this.write(bytes);
    return BigInt(bytes.length);
  }
  blockingSplice(from: InputStream, len: bigint): bigint {
    return this.splice(from, len);
  }
  /** Closed by its owner (an outgoing body finished): later writes fail. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.onClose?.();
  }
  [Symbol.dispose](): void {
    this.close();
  }
}

/** The `wasi:io` interfaces, as jco's generated code imports them. */
export function ioImports() {
  return {
    "wasi:io/error": { Error: IoError },
    "wasi:io/poll": { Pollable, poll },
    "wasi:io/streams": { InputStream, OutputStream },
  };
}
