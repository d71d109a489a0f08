/**
 * Putting an instance back to the state it had right after instantiation, so that it can
 * serve the next run as if it were new: its memory (only the chunks the run wrote, when the
 * module tracks its writes) and every mutable global. Shared by the server's thread and the
 * pool's workers.
 * @module
 */

import { CHUNK_BITS, STORE_SPILL } from "../wasm/contract.ts";

/** A copy of `bytes` up to and including its last non-zero byte. */
function nonZeroPrefix(bytes: Uint8Array): Uint8Array {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return bytes.slice(0, end);
}

/**
 * Puts back the chunks marked in `written` (clearing the marks): each from `pristine`, zeros
 * past its end. A run of marked chunks is restored as one range, plus the bytes a store at the
 * end of its last chunk may have written into the next one.
 */
function restoreWritten(
  view: Uint8Array,
  pristine: Uint8Array,
  written: Uint8Array,
  eights: Float64Array,
): void {
  // Memory sizes are whole 64 KiB pages, so `chunks` is a multiple of 64: whole groups of 8.
  const chunks = view.length >>> CHUNK_BITS;
  for (let chunk = 0; chunk < chunks;) {
    // Eight marks (0 or 1 each) read as a double are 0 only when all eight are.
    if ((chunk & 7) === 0 && eights[chunk >>> 3] === 0) {
      chunk += 8;
      continue;
    }
    if (written[chunk] === 0) {
      chunk++;
      continue;
    }
    let end = chunk + 1;
    while (end < chunks && written[end] !== 0) end++;
    if (end === chunk + 1) written[chunk] = 0;
    else written.fill(0, chunk, end);
    const from = chunk << CHUNK_BITS;
    const to = Math.min(view.length, (end << CHUNK_BITS) + STORE_SPILL);
    const kept = pristine.length;
    if (from < kept) view.set(pristine.subarray(from, Math.min(to, kept)), from);
    if (to > kept) view.fill(0, Math.max(from, kept), to);
    chunk = end;
  }
}

/** An instance's memory and mutable globals as they were right after instantiation. */
export class FreshState {
  /** Memory up to its last non-zero byte (the rest was zero). */
  readonly #pristine: Uint8Array;
  /** A view of the memory; it has no bytes once the memory grew (its buffer is detached). */
  readonly #view: Uint8Array;
  readonly #written: Uint8Array | undefined;
  /** The chunk map as doubles, to skip eight clean chunks at a time. */
  readonly #writtenEights: Float64Array | undefined;
  readonly #globals: readonly WebAssembly.Global[];
  readonly #initial: unknown[];

  /**
   * Records the state of a just-made instance: its `memory` (not shared), its mutable
   * `globals`, and its chunk map `written` when its module tracks its writes.
   */
  constructor(
    memory: WebAssembly.Memory,
    globals: readonly WebAssembly.Global[],
    written: Uint8Array | undefined,
  ) {
    this.#view = new Uint8Array(memory.buffer);
    this.#pristine = nonZeroPrefix(this.#view);
    this.#written = written;
    this.#writtenEights = written && new Float64Array(written.buffer);
    this.#globals = globals;
    this.#initial = globals.map((g) => g.value);
  }

  /** True while the memory has not grown: growing it detaches the buffer the view is on. */
  get restorable(): boolean {
    return this.#view.byteLength !== 0;
  }

  /** Puts the state back; only when {@link restorable}. */
  restore(): void {
    const view = this.#view;
    if (this.#written) {
      restoreWritten(view, this.#pristine, this.#written, this.#writtenEights!);
    } else {
      // Zeroing costs less than copying, and most of a fresh memory is zeros.
      view.set(this.#pristine);
      view.fill(0, this.#pristine.length);
    }
    const globals = this.#globals;
    for (let i = 0; i < globals.length; i++) globals[i].value = this.#initial[i];
  }
}

/**
 * Instantiation that notices host calls made by the module's start function: after a start
 * function that called nobody, every instance starts in the same state, so the one after it
 * ran is a fresh state to put back; after one that called the host (whose answers may differ
 * from one instance to the next), it is not.
 */
export class StartWatch {
  #starting = false;
  #calledHost = false;

  constructor(
    /** Imported functions that are not the host (another instance's guest code, say). */
    readonly notHost: (call: unknown) => boolean = () => false,
  ) {}

  /** `imports`, each call noting whether a start function made it. Wrap once, link often. */
  wrap(imports: WebAssembly.Imports): WebAssembly.Imports {
    const watched: WebAssembly.Imports = {};
    for (const [moduleName, calls] of Object.entries(imports)) {
      const table: Record<string, unknown> = {};
      for (const [name, call] of Object.entries(calls)) {
        if (typeof call !== "function" || this.notHost(call)) {
          table[name] = call;
          continue;
        }
        const run = call as (...args: unknown[]) => unknown;
        table[name] = (...args: unknown[]) => {
          if (this.#starting) this.#calledHost = true;
          return run(...args);
        };
      }
      watched[moduleName] = table as WebAssembly.ModuleImports;
    }
    return watched;
  }

  /** A new instance, and whether its start function (if any) called the host. */
  instantiate(
    module: WebAssembly.Module,
    imports: WebAssembly.Imports,
  ): { instance: WebAssembly.Instance; startCalledHost: boolean } {
    this.#starting = true;
    this.#calledHost = false;
    let instance: WebAssembly.Instance;
    try {
      instance = new WebAssembly.Instance(module, imports);
    } finally {
      this.#starting = false;
    }
    return { instance, startCalledHost: this.#calledHost };
  }
}
