/**
 * The module cache: each distinct module is read and compiled once (same bytes → one
 * `WebAssembly.Module`), `.wat` text is compiled to binary first, and imports are checked
 * against what the host provides, so that a request only instantiates and runs.
 * @module
 */

import { readBytes } from "../paths.ts";
import { sha256Hex } from "../digest.ts";
import { HTTP_FUNCTIONS, HTTP_MODULE } from "../outbound_http/names.ts";
import { limitMemory } from "../wasm/memory_limit.ts";
import { hasWasmMagic, isWatText, watToWasm } from "../wasm/wat.ts";
import { importsOf } from "../wasm/binary.ts";
import { CompileCache } from "./compile_cache.ts";
import { type ReuseInfo, setReuseInfo } from "./module_info.ts";
import type { ComponentLoader } from "./module_component.ts";
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

/**
 * Checks that every import of the module `bytes` is one the host provides; throws naming the
 * first that is not.
 */
export function checkImports(path: string, bytes: Uint8Array): void {
  for (const imp of importsOf(bytes)) {
    const names = PROVIDED[imp.module];
    if (!names?.has(imp.name) || imp.kind !== "function") {
      throw new ModuleLoadError(
        `${path}: imports ${imp.kind} '${imp.module}.${imp.name}', which this host does not provide`,
      );
    }
  }
}

/** A module as compiled, with the bytes it was made from. */
export interface CompiledModule {
  module: WebAssembly.Module;
  /** Its binary as loaded, memory cap applied (before it was made preemptible). */
  bytes: Uint8Array;
  /** The SHA-256 of `bytes`, hex. */
  digest: string;
  /** The cap on its memory, if any. */
  memoryLimitBytes?: number;
}

/** How the cache treats what it compiles. */
export interface ModuleCacheOptions {
  /**
   * Compile each module preemptible (see wasm/preemption.ts), so that it can be stopped at
   * its deadline; a module that cannot be made so is refused. Off: as it is (`run`).
   */
  preemptible?: boolean;
  /**
   * Told of each distinct module once it compiled (for example to prepare variants of it);
   * loading does not wait for what it does.
   */
  onCompiled?: (compiled: CompiledModule) => void;
  /** Where text compiled to binary and rewritten modules are kept across starts. */
  compileCache?: CompileCache;
  /** Loads WASI 0.2 components; without it, a component is refused. */
  loadComponent?: ComponentLoader;
}

/**
 * Whether `bytes` (with the `\0asm` magic) are a component: its preamble says version 0x0d and
 * layer 1, where a core module says version 1.
 */
export function isComponent(bytes: Uint8Array): boolean {
  return bytes[4] === 0x0d && bytes[5] === 0 && bytes[6] === 1 && bytes[7] === 0;
}

/** Compiled modules by file path and by content hash, each for a memory limit. */
export class ModuleCache {
  #byPath = new Map<string, Promise<WebAssembly.Module>>();
  #byDigest = new Map<string, Promise<WebAssembly.Module>>();
  /** The modules of `#byDigest` that compiled, by the same keys. */
  #compiled = new Map<string, WebAssembly.Module>();
  readonly #derived: CompileCache;
  #compilations = 0;

  constructor(readonly options: ModuleCacheOptions = {}) {
    this.#derived = options.compileCache ?? new CompileCache(undefined);
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

  /** Distinct modules compiled so far (a module found again by its bytes is not counted). */
  get compilations(): number {
    return this.#compilations;
  }

  /**
   * Forgets which file holds which module, so that the next {@link load} of a path reads the
   * file again (a reload); modules are still found by their bytes, not compiled again.
   */
  forgetPaths(): void {
    this.#byPath.clear();
  }

  /**
   * Drops every compiled module but those in `inUse` (after a reload: the modules of the
   * configuration before are no longer needed once its requests end, which hold their own),
   * and which file held which (the next load reads files again).
   */
  keepOnly(inUse: ReadonlySet<WebAssembly.Module>): void {
    for (const [key, module] of this.#compiled) {
      if (inUse.has(module)) continue;
      this.#compiled.delete(key);
      this.#byDigest.delete(key);
    }
    this.#byPath.clear();
  }

  async #compile(path: string, memoryLimitBytes?: number): Promise<WebAssembly.Module> {
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = await readBytes(path, this.#derived.blockingReads());
    } catch (error) {
      throw new ModuleLoadError(`${path}: cannot read module: ${(error as Error).message}`);
    }
    if (isWatText(path, bytes)) {
      const text = bytes;
      try {
        const binary = await this.#derived.derive("wat", await sha256Hex(text), async () => ({
          bytes: await watToWasm(path, new TextDecoder().decode(text)),
        }));
        bytes = new Uint8Array(binary.bytes);
      } catch (error) {
        throw new ModuleLoadError(`${path}: invalid WebAssembly text: ${(error as Error).message}`);
      }
    }
    if (!hasWasmMagic(bytes)) {
      throw new ModuleLoadError(
        `${path}: invalid WebAssembly module: neither a binary module (it does not start with ` +
          `the \\0asm magic number) nor WebAssembly text`,
      );
    }
    if (isComponent(bytes)) return await this.#loadComponent(path, bytes, memoryLimitBytes);
    if (memoryLimitBytes !== undefined) {
      try {
        bytes = new Uint8Array(limitMemory(bytes, memoryLimitBytes));
      } catch (error) {
        throw new ModuleLoadError(`${path}: ${(error as Error).message}`);
      }
    }
    const digest = await sha256Hex(bytes);
    return await this.#once(
      `${memoryLimitBytes ?? "unlimited"}:${digest}`,
      () => this.#compileBytes(path, bytes, digest, memoryLimitBytes),
    );
  }

  /** The module compiled under `key`, compiled by `compile` unless it is (being) already. */
  #once(key: string, compile: () => Promise<WebAssembly.Module>): Promise<WebAssembly.Module> {
    let compiled = this.#byDigest.get(key);
    if (!compiled) {
      compiled = compile();
      this.#byDigest.set(key, compiled);
      // A failure is not kept: the same bytes are tried again at the next load.
      compiled.then((module) => this.#compiled.set(key, module), () => {
        if (this.#byDigest.get(key) === compiled) this.#byDigest.delete(key);
      });
    }
    return compiled;
  }

  /** A component: loaded once per content and memory limit (see component/load.ts). */
  async #loadComponent(
    path: string,
    bytes: Uint8Array<ArrayBuffer>,
    memoryLimitBytes: number | undefined,
  ): Promise<WebAssembly.Module> {
    const loadComponent = this.options.loadComponent;
    if (!loadComponent) {
      throw new ModuleLoadError(
        `${path}: a WebAssembly component (component model, WASI 0.2), not a core module, ` +
          "and components are not served here",
      );
    }
    const digest = await sha256Hex(bytes);
    return await this.#once(`component:${memoryLimitBytes ?? "unlimited"}:${digest}`, async () => {
      this.#compilations++;
      try {
        return await loadComponent(bytes, digest, {
          memoryLimitBytes,
          preemptible: this.options.preemptible,
          derived: this.#derived,
        });
      } catch (error) {
        throw new ModuleLoadError(`${path}: ${(error as Error).message}`);
      }
    });
  }

  async #compileBytes(
    path: string,
    bytes: Uint8Array<ArrayBuffer>,
    digest: string,
    memoryLimitBytes: number | undefined,
  ): Promise<WebAssembly.Module> {
    this.#compilations++;
    let runnable = bytes;
    let reuse: ReuseInfo | undefined;
    try {
      checkImports(path, bytes);
      if (this.options.preemptible) {
        const derived = await this.#derived.derive("preemptible", digest, async () => {
          // The rewriter loads only when a module is rewritten, not read back from the cache.
          const { preemptibleModule } = await import("../wasm/preemption.ts");
          const { bytes: rewritten, ...learnt } = preemptibleModule(bytes);
          return { bytes: rewritten, meta: learnt };
        });
        runnable = derived.bytes as Uint8Array<ArrayBuffer>;
        reuse = derived.meta as ReuseInfo | undefined;
      }
    } catch (error) {
      if (error instanceof ModuleLoadError) throw error;
      // The engine's own reason when the module is invalid; else the rewrite's.
      await this.#engineVerdict(path, bytes);
      throw new ModuleLoadError(
        `${path}: cannot be stopped at its deadline, so it is not run: ${(error as Error).message}`,
      );
    }
    let module: WebAssembly.Module;
    try {
      module = await WebAssembly.compile(runnable as Uint8Array<ArrayBuffer>);
    } catch (error) {
      await this.#engineVerdict(path, bytes);
      throw new ModuleLoadError(`${path}: ${(error as Error).message}`);
    }
    if (reuse) setReuseInfo(module, reuse);
    this.options.onCompiled?.({ module, bytes, digest, memoryLimitBytes });
    return module;
  }

  /** Throws the engine's reason when `bytes` are not a valid module. */
  async #engineVerdict(path: string, bytes: Uint8Array): Promise<void> {
    try {
      await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
    } catch (error) {
      throw new ModuleLoadError(`${path}: invalid WebAssembly module: ${(error as Error).message}`);
    }
  }
}
