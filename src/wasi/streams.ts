/**
 * Simple in-memory stdio for the WASI host: a byte source for stdin and a collecting sink.
 * @module
 */

import type { InputSource, OutputSink } from "./descriptors.ts";

/** No bytes: stdin of a request without a body. */
export const NO_BYTES: Uint8Array<ArrayBuffer> = new Uint8Array(0);

/** stdin from bytes already in memory. */
export class BytesSource implements InputSource {
  #offset = 0;
  constructor(readonly bytes: Uint8Array) {}
  read(memory: Uint8Array, at: number, length: number): number {
    const n = Math.min(length, this.bytes.length - this.#offset);
    memory.set(this.bytes.subarray(this.#offset, this.#offset + n), at);
    this.#offset += n;
    return n;
  }
  available(): number {
    return this.bytes.length - this.#offset;
  }
}

/** Collects everything written, copying each write out of guest memory. */
export class CollectingSink implements OutputSink {
  #chunks: Uint8Array[] = [];
  #length = 0;
  /** Stop collecting past this many bytes (the rest is counted, not kept). */
  constructor(readonly limit = Infinity) {}
  write(memory: Uint8Array, at: number, length: number): void {
    const room = Math.min(length, this.limit - this.#length);
    if (room > 0) {
      this.#chunks.push(memory.slice(at, at + room));
      this.#length += room;
    }
  }
  /** Everything collected, as one array. */
  bytes(): Uint8Array<ArrayBuffer> {
    if (this.#length === 0) return NO_BYTES;
    const out = new Uint8Array(this.#length);
    let at = 0;
    for (const chunk of this.#chunks) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }
}

/** Discards everything. */
export const DISCARD: OutputSink = { write() {} };

/** stdin from a host file handle (the process's stdin for `run`), read synchronously. */
export class HandleSource implements InputSource {
  readonly terminal: boolean;
  constructor(
    readonly handle: { readSync(into: Uint8Array): number | null; isTerminal(): boolean },
  ) {
    this.terminal = handle.isTerminal();
  }
  read(memory: Uint8Array, at: number, length: number): number {
    if (length === 0) return 0;
    return this.handle.readSync(memory.subarray(at, at + length)) ?? 0;
  }
  available(): number {
    return 0;
  }
}

/** Output straight to a host file handle (the process's stdout or stderr for `run`). */
export class HandleSink implements OutputSink {
  readonly terminal: boolean;
  constructor(readonly handle: { writeSync(data: Uint8Array): number; isTerminal(): boolean }) {
    this.terminal = handle.isTerminal();
  }
  write(memory: Uint8Array, at: number, length: number): void {
    const end = at + length;
    while (at < end) at += this.handle.writeSync(memory.subarray(at, end));
  }
}
