/**
 * The module cache: each distinct module is read and compiled once (same bytes → one
 * `WebAssembly.Module`), `.wat` text is compiled to binary first, and imports are checked
 * against what the host provides, so that a request only instantiates and runs.
 * @module
 */

import { sha256Hex } from "../digest.ts";
import { HTTP_FUNCTIONS, HTTP_MODULE } from "../outbound_http/experimental_http.ts";
import { limitMemory } from "../wasm/memory_limit.ts";
import { isWatText, watToWasm } from "../wasm/wat.ts";
import { WasiHost } from "../wasi/host.ts";
import { idleOptions } from "../wasi/state.ts";

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

/** A module as compiled, with the bytes it was compiled from. */
export interface CompiledModule {
  module: WebAssembly.Module;
  /** Its binary, memory cap applied. */
  bytes: Uint8Array;
  /** The cap on its memory, if any. */
  memoryLimitBytes?: number;
}

/** How the cache treats what it compiles. */
export interface ModuleCacheOptions {
  /**
   * Told of each distinct module once it compiled (for example to prepare variants of it);
   * loading does not wait for what it does.
   */
  onCompiled?: (compiled: CompiledModule) => void;
}

/** Compiled modules by file path and by content hash, each for a memory limit. */
export class ModuleCache {
  #byPath = new Map<string, Promise<WebAssembly.Module>>();
  #byDigest = new Map<string, Promise<WebAssembly.Module>>();

  constructor(readonly options: ModuleCacheOptions = {}) {}

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
      const binary = bytes;
      compiled = WebAssembly.compile(binary).then((module) => {
        checkImports(path, module);
        this.options.onCompiled?.({ module, bytes: binary, memoryLimitBytes });
        return module;
      }, (error) => {
        throw new ModuleLoadError(`${path}: invalid WebAssembly module: ${error.message}`);
      });
      this.#byDigest.set(digest, compiled);
    }
    return await compiled;
  }
}
