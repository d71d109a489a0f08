/**
 * Loading a component for the module cache: transpiled once per content digest (kept in the
 * module cache directory, so a restart does not transpile again), its imports checked against
 * what this host provides, and each core module capped, made preemptible and compiled as a WAGI
 * module is. The result is the component's first core module, standing for the whole (see
 * parts.ts).
 * @module
 */

import { sha256Hex } from "../digest.ts";
import { limitMemory } from "../wasm/memory_limit.ts";
import {
  type ComponentLoader,
  type ComponentParts,
  type ComponentWorld,
  setComponentParts,
} from "../run/module_component.ts";
import type { ReuseInfo } from "../run/module_info.ts";
import { PROVIDED_INTERFACES } from "./runner.ts";
import { JCO_TRANSPILE_VERSION, TRANSPILE_FORMAT, transpileInWorker } from "./transpile.ts";
import { scanHostWrites } from "./host_writes.ts";

/** The cache's name for transpiled components: another jco, or another treatment, is another. */
const TRANSPILED_KIND = `component-jco${JCO_TRANSPILE_VERSION}-${TRANSPILE_FORMAT}`;

/** Changes when what is done to a component's core modules changes (kept ones are not used). */
const REWRITE_FORMAT = 2;

/** What is kept of a transpiled component besides its core modules' bytes. */
interface TranspiledMeta {
  world: ComponentWorld;
  js: string;
  imports: string[];
  async: boolean;
  /** For an async component, jco's code without JSPI (see transpile.ts). */
  syncJs?: string;
  /** Core module names and byte lengths, in the order their bytes are stored. */
  cores: [string, number][];
}

/** `name@version` → `name`. */
function unversioned(name: string): string {
  const at = name.indexOf("@");
  return at === -1 ? name : name.slice(0, at);
}

/**
 * The module standing for the component in `bytes` (with SHA-256 `digest`), loaded as the
 * module doc says. Throws with the reason (no file name: the caller adds it).
 */
export async function loadComponent(
  bytes: Uint8Array<ArrayBuffer>,
  digest: string,
  options: Parameters<ComponentLoader>[2],
): Promise<WebAssembly.Module> {
  const derived = await options.derived.derive(TRANSPILED_KIND, digest, async () => {
    const transpiled = await transpileInWorker(bytes);
    const meta: TranspiledMeta = {
      world: transpiled.world,
      js: transpiled.js,
      imports: transpiled.imports,
      async: transpiled.async,
      syncJs: transpiled.syncJs,
      cores: transpiled.cores.map(([name, core]) => [name, core.length]),
    };
    const all = new Uint8Array(transpiled.cores.reduce((sum, [, core]) => sum + core.length, 0));
    let at = 0;
    for (const [, core] of transpiled.cores) {
      all.set(core, at);
      at += core.length;
    }
    return { bytes: all, meta };
  });
  const meta = derived.meta as TranspiledMeta;
  const missing = meta.imports.filter((name) => !PROVIDED_INTERFACES.has(unversioned(name)));
  if (missing.length > 0) {
    throw new Error(
      `a component importing ${missing.join(", ")}, which this host does not provide`,
    );
  }
  const cores: Record<string, WebAssembly.Module> = {};
  const reuse: Record<string, ReuseInfo> = {};
  const tracked: string[] = [];
  let at = 0;
  for (const [name, length] of meta.cores) {
    let core = derived.bytes.slice(at, at + length) as Uint8Array<ArrayBuffer>;
    at += length;
    if (options.memoryLimitBytes !== undefined) {
      core = new Uint8Array(limitMemory(core, options.memoryLimitBytes));
    }
    if (options.preemptible) {
      const input = core;
      const rewritten = await options.derived.derive(
        // Named with the format too: an entry written before the rewrite's findings were kept
        // with it has none, and would make every instance single-use (or untracked).
        `component-preemptible-${TRANSPILE_FORMAT}-${REWRITE_FORMAT}`,
        await sha256Hex(input),
        async () => {
          const [{ preemptibleModule }, { trackWrites }] = await Promise.all([
            import("../wasm/preemption.ts"),
            import("../wasm/write_tracking.ts"),
          ]);
          const { bytes: preemptible, ...learnt } = preemptibleModule(input);
          // Its writes marked too, when they can all be seen: put back chunk by chunk.
          const tracked = trackWrites(preemptible, { mapForAnySize: true, importedMemory: true });
          if (typeof tracked === "string") return { bytes: preemptible, meta: learnt };
          return { bytes: tracked, meta: { ...learnt, tracksWrites: true } };
        },
      );
      core = new Uint8Array(rewritten.bytes);
      if (rewritten.meta) {
        const { tracksWrites, ...learnt } = rewritten.meta as ReuseInfo & { tracksWrites?: true };
        reuse[name] = learnt;
        if (tracksWrites) tracked.push(name);
      }
    }
    cores[name] = await WebAssembly.compile(core as Uint8Array<ArrayBuffer>);
  }
  const parts: ComponentParts = {
    world: meta.world,
    js: meta.js,
    cores,
    reuse,
    tracked,
    // Read here rather than kept with the transpiled code: always by this server's rules.
    hostWrites: scanHostWrites(meta.js),
    async: meta.async,
    firstTry: meta.syncJs === undefined
      ? undefined
      : { js: meta.syncJs, hostWrites: scanHostWrites(meta.syncJs) },
  };
  const standIn = cores[meta.cores[0][0]];
  setComponentParts(standIn, parts);
  return standIn;
}
