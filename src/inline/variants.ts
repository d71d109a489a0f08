/**
 * Preparing modules to run on the server's thread: each is rewritten (memory capped, fuel
 * metered, writes tracked; kept across starts by digest) and compiled again, once, as soon as
 * the module cache has it. A module that cannot be prepared, or that imports calls that wait
 * for the network, runs in the pool only; the reason is kept for the log.
 * @module
 */

import { limitMemory } from "../wasm/memory_limit.ts";
import { HTTP_MODULE } from "../outbound_http/names.ts";
import type { CompiledModule } from "../run/module_cache.ts";
import { CompileCache, type Derived } from "../run/compile_cache.ts";

/**
 * Fuel a run may use on the server's thread, in instructions (roughly: each function call and
 * loop pass is charged the size of its body): about 2 ms of a tight loop once compiled, a few
 * more while the engine still compiles. A guest that needs more is redone in the pool, where
 * its real timeout applies.
 */
export const INLINE_FUEL = 50_000_000;

/**
 * Linear memory a guest may use on the server's thread: one that needs more is redone in the
 * pool, so that a memory-hungry request cannot swell the server's own heap.
 */
const INLINE_MEMORY_CAP_BYTES = 16 * 1024 * 1024;

/** Modules importing these run in the pool only: their calls wait for the network. */
const POOL_ONLY_IMPORTS = new Set([HTTP_MODULE]);

/** A module prepared to run on the server's thread, with what its instances allow. */
export interface InlineModule {
  module: WebAssembly.Module;
  /** Indices of its exported mutable globals (see `STATE_GLOBAL_PREFIX`). */
  stateGlobals: readonly number[];
  /** Why an instance must not serve a second run; undefined when it may. */
  notReusable?: string;
  /**
   * It has a start function: an instance may serve a second run only when that function made
   * no host call (then every instance starts in the same state).
   */
  hasStart: boolean;
  /**
   * Its memory maximum here is below its real limit: a run refused memory here is redone in
   * the pool, where it may get it.
   */
  capBelowLimit: boolean;
  /**
   * It records the chunks it writes (see wasm/write_tracking.ts), so only those are put back
   * between runs; otherwise all of its memory is.
   */
  tracksWrites: boolean;
}

/** What the rewrite for the server's thread learnt, kept with its bytes (JSON). */
type RewriteMeta =
  | { stateGlobals: number[]; notReusable?: string; hasStart: boolean; tracksWrites: boolean }
  | { why: string };

/** The rewrite of a module's bytes for the server's thread, or why it has none. */
async function rewriteInline(bytes: Uint8Array, capBytes: number): Promise<Derived> {
  // The rewriters load only when a module is rewritten, not read back from the cache.
  const [{ meter }, { trackWrites }] = await Promise.all([
    import("../wasm/metering.ts"),
    import("../wasm/write_tracking.ts"),
  ]);
  try {
    const metered = meter(limitMemory(bytes, capBytes), INLINE_FUEL);
    // Without a chunk map, all of its memory is put back between runs.
    const tracked = trackWrites(metered.bytes);
    const meta: RewriteMeta = {
      stateGlobals: [...metered.stateGlobals],
      notReusable: metered.notReusable,
      hasStart: metered.hasStart,
      tracksWrites: typeof tracked !== "string",
    };
    return { bytes: typeof tracked === "string" ? metered.bytes : tracked, meta };
  } catch (error) {
    return { bytes: new Uint8Array(), meta: { why: (error as Error).message } };
  }
}

/**
 * The inline variant of a module's bytes, or why it has none. With `derived` and the bytes'
 * `digest`, the rewrite is kept across starts.
 */
export async function prepareInline(
  bytes: Uint8Array,
  memoryLimitBytes: number | undefined,
  derived: CompileCache = new CompileCache(undefined),
  digest?: string,
): Promise<InlineModule | string> {
  const capBytes = Math.min(memoryLimitBytes ?? Infinity, INLINE_MEMORY_CAP_BYTES);
  const rewrite = () => rewriteInline(bytes, capBytes);
  const { bytes: rewritten, meta } = digest === undefined
    ? await rewrite()
    : await derived.derive(`inline-${capBytes}`, digest, rewrite);
  const learnt = meta as RewriteMeta;
  if ("why" in learnt) return learnt.why;
  try {
    const module = await WebAssembly.compile(rewritten as Uint8Array<ArrayBuffer>);
    const poolOnly = WebAssembly.Module.imports(module).find((i) =>
      POOL_ONLY_IMPORTS.has(i.module)
    );
    if (poolOnly) return `it imports '${poolOnly.module}'`;
    return {
      module,
      stateGlobals: learnt.stateGlobals,
      notReusable: learnt.notReusable,
      hasStart: learnt.hasStart,
      // At the module's own limit, the cap is the real one: nothing to redo.
      capBelowLimit: capBytes < (memoryLimitBytes ?? Infinity),
      tracksWrites: learnt.tracksWrites,
    };
  } catch (error) {
    return (error as Error).message;
  }
}

/** The inline variants of the modules a cache compiled, prepared as they come. */
export class InlineVariants {
  #variants = new WeakMap<WebAssembly.Module, InlineModule>();
  /** Why a module has no inline variant, by module, for the log. */
  #notInline = new WeakMap<WebAssembly.Module, string>();
  /** Variants being prepared, by module: a run may wait for its own. */
  #pending = new WeakMap<WebAssembly.Module, Promise<unknown>>();
  /** Variants still being prepared (each leaves once ready: reloads add more). */
  #preparing = new Set<Promise<unknown>>();

  constructor(
    /** Where rewrites are kept across starts. */
    readonly derived: CompileCache = new CompileCache(undefined),
  ) {}

  /** Prepares the variant of `compiled` (hand this to the module cache's `onCompiled`). */
  add(compiled: CompiledModule): void {
    const prepared = (async () => {
      const variant = await prepareInline(
        compiled.bytes,
        compiled.memoryLimitBytes,
        this.derived,
        compiled.digest,
      );
      if (typeof variant === "string") this.#notInline.set(compiled.module, variant);
      else this.#variants.set(compiled.module, variant);
      this.#pending.delete(compiled.module);
    })();
    this.#pending.set(compiled.module, prepared);
    this.#preparing.add(prepared);
    prepared.finally(() => this.#preparing.delete(prepared)).catch(() => {});
  }

  /** The variant of `module` that runs on the server's thread, once it is ready. */
  variantOf(module: WebAssembly.Module): InlineModule | undefined {
    return this.#variants.get(module);
  }

  /**
   * Settles when the variant of `module` is ready, or known not to be possible; undefined
   * when it is not being prepared.
   */
  preparing(module: WebAssembly.Module): Promise<unknown> | undefined {
    return this.#pending.get(module);
  }

  /** Why `module` runs only in the worker pool; undefined when it has a variant. */
  whyNot(module: WebAssembly.Module): string | undefined {
    return this.#notInline.get(module);
  }

  /** Settles once every module added so far has its variant, or a reason it has none. */
  async settled(): Promise<void> {
    await Promise.all([...this.#preparing]);
  }
}
