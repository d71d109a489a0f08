/**
 * The module cache: each distinct module is read and compiled once (same bytes → one
 * `WebAssembly.Module`), `.wat` text is compiled to binary first, and imports are checked
 * against what the host provides, so that a request only instantiates and runs.
 * @module
 */

import { sha256Hex } from "../digest.ts";
import { HTTP_FUNCTIONS, HTTP_MODULE } from "../outbound_http/experimental_http.ts";
import { limitMemory } from "../wasm/memory_limit.ts";
import { meter } from "../wasm/metering.ts";
import { trackWrites } from "../wasm/write_tracking.ts";
import { isWatText, watToWasm } from "../wasm/wat.ts";
import { INLINE_FUEL, type InlineModule } from "./inline_runner.ts";
import { idleOptions } from "../wasi/state.ts";
import { WasiHost } from "../wasi/host.ts";

/** A module that cannot be loaded; the message names the file and the reason. */
export class ModuleLoadError extends Error {
  override name = "ModuleLoadError";
}

/** Import modules the WASI host provides, with the names it provides in each. */
const PROVIDED: Record<string, Set<string>> = (() => {
  const host = new WasiHost(idleOptions());
  const imports = host.imports();
  return {
    ...Object.fromEntries(
      Object.entries(imports).map(([name, calls]) => [name, new Set(Object.keys(calls))]),
    ),
    [HTTP_MODULE]: new Set(HTTP_FUNCTIONS),
  };
})();

/** Checks that every import is one the host provides; throws naming the first that is not. */
export function checkImports(path: string, module: WebAssembly.Module): void {
  for (const imp of WebAssembly.Module.imports(module)) {
    const names = PROVIDED[imp.module];
    if (!names?.has(imp.name) || imp.kind !== "function") {
      throw new ModuleLoadError(
        `${path}: imports ${imp.kind} '${imp.module}.${imp.name}', which this host does not provide`,
      );
    }
  }
}

/**
 * Linear memory a guest may use on the server's thread: one that needs more is redone in the
 * pool, so that a memory-hungry request cannot swell the server's own heap.
 */
const INLINE_MEMORY_CAP_BYTES = 16 * 1024 * 1024;

/** How long after loading a module its inline variant is prepared, in the background. */
const PREPARE_INLINE_AFTER_MS = 1000;

/** How the cache prepares modules. */
export interface ModuleCacheOptions {
  /**
   * Also prepare each module to run on the server's thread (see `inlineVariant`): before
   * `load` resolves (`true`), or afterwards, off the start-up path (`"background"`); until
   * then the module runs in the pool.
   */
  inline?: boolean | "background";
}

/** Compiled modules by file path and by content hash, each for a memory limit. */
export class ModuleCache {
  #byPath = new Map<string, Promise<WebAssembly.Module>>();
  #byDigest = new Map<string, Promise<WebAssembly.Module>>();
  #inline = new WeakMap<WebAssembly.Module, InlineModule>();
  /** Why a module has no inline variant, by module, for the log. */
  #notInline = new WeakMap<WebAssembly.Module, string>();
  /** Inline variants still being prepared. */
  #preparing: Promise<unknown>[] = [];

  constructor(readonly options: ModuleCacheOptions = {}) {}

  /** The metered variant of a loaded module that runs on the server's thread, if it has one. */
  inlineVariant(module: WebAssembly.Module): InlineModule | undefined {
    return this.#inline.get(module);
  }

  /** Settles once every module loaded so far has its inline variant, or a reason it has none. */
  async inlineSettled(): Promise<void> {
    await Promise.all(this.#preparing);
  }

  /** Why a loaded module runs only in the worker pool; undefined when it has a variant. */
  whyNotInline(module: WebAssembly.Module): string | undefined {
    return this.#notInline.get(module);
  }

  /**
   * The compiled module of the file at `path`, compiling it on first use. With
   * `memoryLimitBytes`, its memory cannot grow past that many bytes.
   */
  load(path: string, memoryLimitBytes?: number): Promise<WebAssembly.Module> {
    const key = `${memoryLimitBytes ?? "unlimited"}:${path}`;
    let found = this.#byPath.get(key);
    if (!found) {
      found = this.#compile(path, memoryLimitBytes);
      this.#byPath.set(key, found);
    }
    return found;
  }

  /** The inline variant of `bytes`, or why there is none; `later` waits for a free moment. */
  async #prepareInline(
    bytes: Uint8Array,
    memoryLimitBytes: number | undefined,
    later: boolean,
  ): Promise<InlineModule | string> {
    // Off the start-up path: the server is listening before this work begins.
    if (later) await new Promise((resolve) => setTimeout(resolve, PREPARE_INLINE_AFTER_MS));
    try {
      const capBytes = Math.min(memoryLimitBytes ?? Infinity, INLINE_MEMORY_CAP_BYTES);
      const metered = meter(limitMemory(bytes, capBytes), INLINE_FUEL);
      // Without a chunk map, all of its memory is put back between runs.
      const tracked = trackWrites(metered.bytes);
      const module = await WebAssembly.compile(
        new Uint8Array(typeof tracked === "string" ? metered.bytes : tracked),
      );
      const poolOnly = WebAssembly.Module.imports(module).find((i) =>
        POOL_ONLY_IMPORTS.has(i.module)
      );
      if (poolOnly) return `it imports '${poolOnly.module}'`;
      return {
        module,
        stateGlobals: metered.stateGlobals,
        notReusable: metered.notReusable,
        // At the module's own limit, the cap is the real one: nothing to redo.
        capBelowLimit: capBytes < (memoryLimitBytes ?? Infinity),
        tracksWrites: typeof tracked !== "string",
      };
    } catch (error) {
      return (error as Error).message;
    }
  }

  async #compile(path: string, memoryLimitBytes?: number): Promise<WebAssembly.Module> {
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = await Deno.readFile(path);
    } catch (error) {
      throw new ModuleLoadError(`${path}: cannot read module: ${(error as Error).message}`);
    }
    if (isWatText(path, bytes)) {
      try {
        bytes = new Uint8Array(await watToWasm(path, new TextDecoder().decode(bytes)));
      } catch (error) {
        throw new ModuleLoadError(`${path}: invalid WebAssembly text: ${(error as Error).message}`);
      }
    }
    if (memoryLimitBytes !== undefined) {
      try {
        bytes = new Uint8Array(limitMemory(bytes, memoryLimitBytes));
      } catch (error) {
        throw new ModuleLoadError(`${path}: ${(error as Error).message}`);
      }
    }
    const digest = `${memoryLimitBytes ?? "unlimited"}:${await sha256Hex(bytes)}`;
    let compiled = this.#byDigest.get(digest);
    if (!compiled) {
      const background = this.options.inline === "background";
      const inline = this.options.inline
        ? this.#prepareInline(bytes, memoryLimitBytes, background)
        : undefined;
      compiled = WebAssembly.compile(bytes).then(async (module) => {
        checkImports(path, module);
        const recorded = inline?.then((variant) => {
          if (typeof variant === "string") this.#notInline.set(module, variant);
          else this.#inline.set(module, variant);
        });
        if (recorded) this.#preparing.push(recorded);
        if (!background) await recorded;
        return module;
      }, (error) => {
        throw new ModuleLoadError(`${path}: invalid WebAssembly module: ${error.message}`);
      });
      this.#byDigest.set(digest, compiled);
    }
    return await compiled;
  }
}

/** Modules importing these run in the pool only: their calls wait for the network. */
const POOL_ONLY_IMPORTS = new Set([HTTP_MODULE]);
