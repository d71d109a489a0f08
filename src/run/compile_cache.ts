/**
 * What loading a module derives from its bytes — WebAssembly text compiled to binary, the
 * rewritten variants — kept on disk by content digest, so that a restart of the same server
 * (the same image) does not redo it. Entries are checked against their own digest when read:
 * a damaged one is made again, never used.
 * @module
 */

import { sha256Hex } from "../digest.ts";
import { readBytes, replaceFile } from "../paths.ts";

/**
 * The SHA-256 of the sources that decide what is derived (src/wasm/*.ts, src/inline/variants.ts
 * and the wabt version in deno.json), so that a changed rewriter never reads entries its
 * predecessor wrote. test/run/compile_cache_test.ts recomputes it and says when to update it.
 */
export const DERIVATION_DIGEST = "61bb0e8539a9cc87b2a995ef302c6c0ad1ff266e9b1a102d5473d270eed1dc00";

/** A derived module: its bytes and what else was learnt making them (JSON). */
export interface Derived {
  bytes: Uint8Array;
  meta?: unknown;
}

/** What the cache did since it was made, for the start-up log and tests. */
export interface CompileCacheCounts {
  /** Entries read from disk. */
  hits: number;
  /** Entries made (and stored, when there is a directory). */
  made: number;
}

/** An entry starts with the SHA-256 of the rest as 64 hex digits, then the metadata length. */
const DIGEST_BYTES = 64;
const HEADER_BYTES = DIGEST_BYTES + 4;

/** Derived modules on disk under `dir` (none kept when `dir` is undefined). */
export class CompileCache {
  readonly counts: CompileCacheCounts = { hits: 0, made: 0 };
  #warned = false;

  #dir: string | undefined;

  constructor(
    dir: string | undefined,
    /** Told once when the directory cannot be written (the server goes on without it). */
    readonly onUnwritable: (message: string) => void = () => {},
    /** Whether reads may hold the thread now (see {@link readBytes}): while starting. */
    readonly blockingReads: () => boolean = () => false,
  ) {
    this.#dir = dir;
  }

  /** The directory entries are kept in; undefined when none is used. */
  get dir(): string | undefined {
    return this.#dir;
  }

  /** Neither reads nor writes the directory from now on (it is not safe to use). */
  forgetDir(): void {
    this.#dir = undefined;
  }

  /**
   * The `kind` derivation of the input with digest `inputDigest`: from disk when stored there,
   * else made by `make` and stored. A failure of `make` is not stored.
   */
  async derive(
    kind: string,
    inputDigest: string,
    make: () => Derived | Promise<Derived>,
  ): Promise<Derived> {
    const path = this.#pathOf(kind, inputDigest);
    const stored = path && await this.#read(path);
    if (stored) {
      this.counts.hits++;
      return stored;
    }
    const derived = await make();
    this.counts.made++;
    if (path) await this.#write(path, derived);
    return derived;
  }

  #pathOf(kind: string, inputDigest: string): string | undefined {
    if (this.dir === undefined) return undefined;
    return `${this.dir}/derived-${DERIVATION_DIGEST.slice(0, 16)}/${kind}-${inputDigest}`;
  }

  async #read(path: string): Promise<Derived | undefined> {
    let file: Uint8Array<ArrayBuffer>;
    try {
      file = await readBytes(path, this.blockingReads());
    } catch {
      return undefined;
    }
    if (file.length < HEADER_BYTES) return undefined;
    const body = file.subarray(DIGEST_BYTES);
    const stored = new TextDecoder().decode(file.subarray(0, DIGEST_BYTES));
    if (stored !== await sha256Hex(body)) return undefined;
    const metaLength = new DataView(body.buffer, body.byteOffset).getUint32(0, true);
    const meta = metaLength === 0
      ? undefined
      : JSON.parse(new TextDecoder().decode(body.subarray(4, 4 + metaLength)));
    return { bytes: body.slice(4 + metaLength), meta };
  }

  async #write(path: string, derived: Derived): Promise<void> {
    const meta = derived.meta === undefined
      ? new Uint8Array()
      : new TextEncoder().encode(JSON.stringify(derived.meta));
    const body = new Uint8Array(4 + meta.length + derived.bytes.length);
    new DataView(body.buffer).setUint32(0, meta.length, true);
    body.set(meta, 4);
    body.set(derived.bytes, 4 + meta.length);
    const digest = await sha256Hex(body);
    const file = new Uint8Array(DIGEST_BYTES + body.length);
    file.set(new TextEncoder().encode(digest));
    file.set(body, DIGEST_BYTES);
    try {
      await replaceFile(path, file);
    } catch (error) {
      if (!this.#warned) {
        this.#warned = true;
        this.onUnwritable(
          `module cache ${this.dir} cannot be written (${(error as Error).message}); ` +
            "modules are derived anew at every start",
        );
      }
    }
  }
}
