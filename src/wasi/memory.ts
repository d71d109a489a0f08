/**
 * The one place where the WASI host reads and writes guest linear memory.
 * @module
 */

import { Errno, WasiError } from "./errno.ts";

const UTF8_DECODER = new TextDecoder("utf-8", { fatal: true });
const UTF8_ENCODER = new TextEncoder();

/** The view of a memory not attached yet (or whose buffer must be looked up again). */
const NO_BYTES = new Uint8Array(0);

/** Told of every range the host writes into guest memory: `length` bytes at `at`. */
export type WriteObserver = (at: number, length: number) => void;

/**
 * Typed, bounds-checked access to a guest's linear memory. The views are rebuilt only
 * when `memory.grow` has replaced the underlying buffer, so a call costs no allocation.
 * With a write observer attached, every write through this class is reported to it.
 */
export class GuestMemory {
  #memory: WebAssembly.Memory | undefined;
  #bytes = NO_BYTES;
  #view = new DataView(new ArrayBuffer(0));
  #onWrite: WriteObserver | undefined;
  #shared = false;

  /** True once a memory is attached (the guest exports one). */
  get attached(): boolean {
    return this.#memory !== undefined;
  }

  /**
   * Points this accessor at an instance's exported memory. `onWrite`, if given, is told of
   * every range the host writes (the inline runner records them to put them back later).
   */
  attach(memory: WebAssembly.Memory, onWrite?: WriteObserver): void {
    this.#memory = memory;
    this.#shared = memory.buffer instanceof SharedArrayBuffer;
    this.#bytes = NO_BYTES;
    this.#onWrite = onWrite;
  }

  /**
   * Reports that `len` bytes at `ptr` were written (already checked to be in bounds). Every
   * write below calls it; code that writes through `bytes` must call it itself.
   */
  wrote(ptr: number, len: number): void {
    const onWrite = this.#onWrite;
    if (onWrite !== undefined && len > 0) onWrite(ptr, len);
  }

  #refresh(): void {
    // Growing a memory detaches its old buffer, which then has no bytes: asking the memory
    // for its buffer is a call into the engine, checking a length is not.
    // A shared memory's buffer is never detached: it is looked up every time.
    if (this.#bytes.byteLength !== 0 && !this.#shared) return;
    const memory = this.#memory;
    if (memory === undefined) throw new WasiError(Errno.FAULT);
    const buffer = memory.buffer as ArrayBuffer;
    this.#bytes = new Uint8Array(buffer);
    this.#view = new DataView(buffer);
  }

  /**
   * The whole memory as bytes (valid until the guest grows its memory), for reading; a
   * caller that writes into it reports what it wrote with `wrote`.
   */
  get bytes(): Uint8Array {
    this.#refresh();
    return this.#bytes;
  }

  /** Reads a little-endian u32. */
  u32(ptr: number): number {
    this.#refresh();
    return this.#view.getUint32(ptr, true);
  }

  /** Reads a little-endian u64. */
  u64(ptr: number): bigint {
    this.#refresh();
    return this.#view.getBigUint64(ptr, true);
  }

  /** Reads a u16. */
  u16(ptr: number): number {
    this.#refresh();
    return this.#view.getUint16(ptr, true);
  }

  /** Reads a u8. */
  u8(ptr: number): number {
    this.#refresh();
    return this.#view.getUint8(ptr);
  }

  /** Writes a u8. */
  setU8(ptr: number, value: number): void {
    this.#refresh();
    this.#view.setUint8(ptr, value);
    this.wrote(ptr, 1);
  }

  /** Writes a little-endian u16. */
  setU16(ptr: number, value: number): void {
    this.#refresh();
    this.#view.setUint16(ptr, value, true);
    this.wrote(ptr, 2);
  }

  /** Writes a little-endian u32. */
  setU32(ptr: number, value: number): void {
    this.#refresh();
    this.#view.setUint32(ptr, value, true);
    this.wrote(ptr, 4);
  }

  /** Writes a little-endian u64. */
  setU64(ptr: number, value: bigint): void {
    this.#refresh();
    this.#view.setBigUint64(ptr, value, true);
    this.wrote(ptr, 8);
  }

  /** Fails with `FAULT` unless `len` bytes at `ptr` lie inside guest memory. */
  check(ptr: number, len: number): void {
    this.#refresh();
    if (ptr < 0 || len < 0 || ptr + len > this.#bytes.length) throw new WasiError(Errno.FAULT);
  }

  /** A view (not a copy) of `len` guest bytes at `ptr`, to read; `FAULT` if out of bounds. */
  slice(ptr: number, len: number): Uint8Array {
    this.#refresh();
    if (ptr < 0 || len < 0 || ptr + len > this.#bytes.length) throw new WasiError(Errno.FAULT);
    return this.#bytes.subarray(ptr, ptr + len);
  }

  /** A view of `len` guest bytes at `ptr` to write into, all counted as written. */
  writable(ptr: number, len: number): Uint8Array {
    const view = this.slice(ptr, len);
    this.wrote(ptr, len);
    return view;
  }

  /** Copies host bytes into guest memory at `ptr`. */
  write(ptr: number, data: Uint8Array): void {
    this.writable(ptr, data.length).set(data);
  }

  /** Decodes a UTF-8 string from guest memory; `ILSEQ` if it is not valid UTF-8. */
  string(ptr: number, len: number): string {
    const raw = this.slice(ptr, len);
    try {
      return UTF8_DECODER.decode(raw);
    } catch {
      throw new WasiError(Errno.ILSEQ);
    }
  }

  /** The UTF-8 bytes of a host string. */
  static encode(text: string): Uint8Array {
    return UTF8_ENCODER.encode(text);
  }
}
