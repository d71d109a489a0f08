/**
 * A WASI 0.2 component as the rest of the server carries it: the JavaScript that jco generated
 * for it and its core modules, compiled (src/component/ makes and runs them). The server knows
 * a component by one of those modules (its first, the guest's own code), with the rest recorded
 * against it here, as the reuse info of a module is: routes, executors and the pool pass that
 * module around as they pass any.
 * @module
 */

import type { CompileCache } from "./compile_cache.ts";
import type { ReuseInfo } from "./module_info.ts";

/** Which world a component serves: an HTTP handler, or a command run CGI-style. */
export type ComponentWorld = "http" | "command";

/** What running a component needs; structured-cloneable, so it travels to pool workers. */
export interface ComponentParts {
  world: ComponentWorld;
  /** jco's instantiation code (an ES module exporting `instantiate`), as text. */
  js: string;
  /** Its core modules by the names the code asks for, made preemptible and memory-capped. */
  cores: Record<string, WebAssembly.Module>;
  /** What the preemption rewrite learnt of each core module, by the same names (if it ran). */
  reuse: Record<string, ReuseInfo | undefined>;
  /** The core modules that mark the chunks of memory they write (wasm/write_tracking.ts). */
  tracked: string[];
  /**
   * The largest return area jco's code writes (see component/host_writes.ts), or why its
   * writes cannot be marked (its instances are then put back whole).
   */
  hostWrites: { returnAreaBytes: number } | string;
  /** It makes outbound requests: its exports wait for them under JSPI (return promises). */
  async: boolean;
  /**
   * For an async component: jco's code without JSPI, and what it writes, for a first try on the
   * server's thread (abandoned at its first outbound request or wait, then redone in the pool).
   */
  firstTry?: { js: string; hostWrites: ComponentParts["hostWrites"] };
}

/**
 * Loads a component's bytes (with their SHA-256 `digest`) into the module standing for it;
 * throws the reason. The module cache is given one (see component/load.ts).
 */
export type ComponentLoader = (
  bytes: Uint8Array<ArrayBuffer>,
  digest: string,
  options: { memoryLimitBytes?: number; preemptible?: boolean; derived: CompileCache },
) => Promise<WebAssembly.Module>;

/** The request an HTTP component is handed (a WAGI module gets it as CGI variables instead). */
export interface HttpRequestHead {
  method: string;
  /** The path and query as the client sent them. */
  pathWithQuery: string;
  scheme: "http" | "https";
  authority: string;
  /** Every header line, in order, repeated names repeated. */
  headers: [string, string][];
}

const parts = new WeakMap<WebAssembly.Module, ComponentParts>();

/** Records that `module` stands for the component `component` (the module cache does). */
export function setComponentParts(module: WebAssembly.Module, component: ComponentParts): void {
  parts.set(module, component);
}

/** The component `module` stands for; undefined for a plain WAGI module. */
export function componentParts(module: WebAssembly.Module): ComponentParts | undefined {
  return parts.get(module);
}
