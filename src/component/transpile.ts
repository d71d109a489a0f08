/**
 * Turning a component's binary into what the server runs: jco's JavaScript (which lifts and
 * lowers values across the component boundary and links the core modules) and the core modules
 * themselves. Loaded only when a configuration has a component: jco's code generator is a
 * large WebAssembly module of its own.
 * @module
 */

import type { ComponentWorld } from "../run/module_component.ts";
import { ASYNC_EXPORTS, ASYNC_IMPORTS } from "./host/outgoing.ts";

/**
 * The jco code generator used, pinned: the JavaScript it generates is on the hot path of
 * every host call (see docs/components.md for why this version).
 */
export const JCO_TRANSPILE_VERSION = "0.1.1";

/** Changes when what is done to jco's output changes: transpiled components kept are then not used. */
export const TRANSPILE_FORMAT = 12;

/**
 * The import under which a run's code hands over the tables of host resources an instance's
 * guest holds (jco's "capture tables", one `Map` per resource type): an array they are pushed
 * into as the instance is made.
 */
export const CAPTURE_TABLES_IMPORT = "wagi:capture-tables";

/**
 * The import under which a run's code hands over its handle tables (jco's arrays of the
 * resource handles a guest was given, one per resource type): an array they are pushed into as
 * the instance is made.
 */
export const HANDLE_TABLES_IMPORT = "wagi:handle-tables";

/**
 * The import the run's code calls at the start of every host call (a function): a guest whose
 * time goes into host calls spends little fuel, so the runner asks about stopping here too.
 */
export const HOST_CALL_IMPORT = "wagi:on-host-call";

/**
 * The import through which the run's code makes each host function a guest waits on (under
 * JSPI) a `WebAssembly.Suspending`: given the function, it returns the wrapper, so that the
 * runner can see what such a function writes (see host_writes.ts).
 */
export const SUSPENDING_IMPORT = "wagi:suspending";

/** A component, transpiled: its world, jco's code, and its core modules as bytes. */
export interface TranspiledComponent {
  world: ComponentWorld;
  js: string;
  /** The interfaces it imports, as jco names them (`wasi:io/streams`). */
  imports: string[];
  /** Core module names (as the code asks for them) and their bytes, in jco's order. */
  cores: [string, Uint8Array][];
  /** It was transpiled for JSPI: its exports return promises (it makes outbound requests). */
  async: boolean;
  /**
   * For a component transpiled for JSPI, jco's code without it (same core modules): for a first
   * try on the server's thread, abandoned at its first outbound request.
   */
  syncJs?: string;
}

/** The worker script; a bundle of the server (dist/) has its own beside it. */
const TRANSPILE_WORKER_URL = import.meta.url.endsWith(".js")
  ? new URL("./transpile_worker.js", import.meta.url).href
  : new URL("./transpile_worker.ts", import.meta.url).href;

/** The transpiling in progress: one at a time, so that one generator at most is loaded. */
let transpiling: Promise<unknown> = Promise.resolve();

/**
 * {@link transpileComponent} in a worker of its own, so that jco's code generator (~130 MiB once
 * loaded) is let go of when it is done rather than kept for the server's life. Components are
 * transpiled one after another: each worker loads a generator of its own.
 */
export function transpileInWorker(component: Uint8Array): Promise<TranspiledComponent> {
  const turn = transpiling.then(() => transpileOnce(component));
  transpiling = turn.catch(() => {});
  return turn;
}

function transpileOnce(component: Uint8Array): Promise<TranspiledComponent> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(TRANSPILE_WORKER_URL, { type: "module" });
    worker.onmessage = (
      event: MessageEvent<{ transpiled?: TranspiledComponent; error?: string }>,
    ) => {
      worker.terminate();
      if (event.data.transpiled) resolve(event.data.transpiled);
      else reject(new Error(event.data.error));
    };
    worker.onerror = (event) => {
      event.preventDefault();
      worker.terminate();
      reject(new Error(`the transpiling worker failed: ${event.message}`));
    };
    worker.postMessage(component);
  });
}

/** The interface a component exports to be a world we serve, by world. */
const WORLD_EXPORTS: [ComponentWorld, RegExp][] = [
  ["http", /^wasi:http\/incoming-handler@0\.2\.\d+$/],
  ["command", /^wasi:cli\/run@0\.2\.\d+$/],
];

/** What the generated code does on every call that the server does not want done. */
const DEBUG_CHECK = "globalThis?.process?.env?.JCO_DEBUG";

/** How the generated code makes a task for every call, and the record that holds it. */
const EAGER_TASK =
  "const newTask = new AsyncTask({ id: nextId, componentIdx, isAsync, entryFnName });";
const TASK_META = "const newTaskMeta = { id: nextId, componentIdx, task: newTask };";
const LAZY_TASK_META =
  "const newTaskMeta = new WagiLazyTaskMeta(nextId, componentIdx, isAsync, entryFnName);";
/** The record, making its task when first asked (defined before the function that uses it). */
const LAZY_TASK_CLASS = `class WagiLazyTaskMeta {
  constructor(id, componentIdx, isAsync, entryFnName) {
    this.id = id; this.componentIdx = componentIdx; this.isAsync = isAsync; this.name = entryFnName;
  }
  get task() {
    return this.made ??= new AsyncTask({
      id: this.id, componentIdx: this.componentIdx, isAsync: this.isAsync, entryFnName: this.name,
    });
  }
}
`;
const START_TASK = "function startCurrentTask(";

/**
 * How the generated code copies a `list<u8>` argument out of guest memory: through
 * `ArrayBuffer.prototype.slice`, a call into the engine's runtime and a new backing store each
 * time.
 */
const BYTES_COPY = /new Uint8Array\((memory\d+)\.buffer\.slice\((ptr\d+), \2 \+ (len\d+) \* 1\)\)/g;
/**
 * The same copy where the next call copies for itself: an output stream's write (into its
 * sink), a field's append (into a string).
 */
const COPY_FOR_A_COPYING_CALL = new RegExp(
  BYTES_COPY.source +
    String.raw`(;\s*_debugLog\('\[iface="wasi:(?:io/streams|http/types)@[\d.]+", function="` +
    String.raw`\[method\](?:output-stream\.(?:write|blocking-write-and-flush)|fields\.append)"\])`,
  "g",
);

/** How the generated code makes an instance's table of the host resources its guest holds. */
const CAPTURE_TABLE = /const (captureTable\d+)\s*=\s*new Map\(\);/g;

/** How the generated code makes an instance's table of the handles its guest was given. */
const HANDLE_TABLE = /const (handleTable\d+) = \[T_FLAG, 0\];/g;

/** Where the generated code begins an instance, and where every host call begins. */
const INSTANTIATE = /export (?:async )?function instantiate\(getCoreModule, imports[^)]*\) \{/;
const HOST_CALL = /function startCurrentTask\(componentIdx, isAsync, entryFnName\) \{/;

/** How the generated code wraps a host function a guest waits on. */
const SUSPENDING = "new WebAssembly.Suspending(";

/** How the generated code returns an empty string without allocating it. */
const EMPTY_STRING_SHORTCUT = /if \(s\.length === 0\) \{\s*utf8EncodedLen = 0;\s*return 1;\s*\}/;

/**
 * Transpiles `component` (its bytes); throws with the reason when jco cannot, or when the
 * component exports neither `wasi:http/incoming-handler` nor `wasi:cli/run` (0.2.x).
 */
export async function transpileComponent(component: Uint8Array): Promise<TranspiledComponent> {
  const { transpileBytes } = await import("jco-transpile");
  const options = {
    name: "component",
    instantiation: "async" as const,
    nodejsCompat: false,
    emitTypescriptDeclarations: false,
    base64Cutoff: 0,
  };
  const sync = await transpileBytes(component, options);
  let out = sync;
  // A component that makes outbound requests waits for them: again, under JSPI.
  const async = (out.imports as string[]).includes("wasi:http/outgoing-handler");
  if (async) {
    out = await transpileBytes(component, {
      ...options,
      asyncMode: "jspi",
      asyncImports: ASYNC_IMPORTS,
      asyncExports: ASYNC_EXPORTS,
    });
  }
  const exported = out.exports.map(([name]: [string, string]) => name);
  const world = WORLD_EXPORTS.find(([, pattern]) => exported.some((name) => pattern.test(name)))
    ?.[0];
  if (!world) {
    throw new Error(
      "a component must export wasi:http/incoming-handler@0.2.x or wasi:cli/run@0.2.x; this " +
        `one exports ${exported.filter((name) => name.includes(":")).join(", ") || "nothing"}`,
    );
  }
  const cores: [string, Uint8Array][] = Object.entries(out.files as Record<string, Uint8Array>)
    .filter(([name]) => name.endsWith(".wasm"));
  const js = adapt(codeOf(out.files));
  const syncJs = async ? adapt(codeOf(sync.files)) : undefined;
  return { world, js, imports: out.imports as string[], cores, async, syncJs };
}

/** The generated code among jco's output files. */
function codeOf(files: Record<string, Uint8Array>): string {
  const [, bytes] = Object.entries(files).find(([name]) => name.endsWith(".js")) ?? [];
  return new TextDecoder().decode(bytes);
}

/** jco's generated code `js` as the runner needs it; throws when it cannot be adapted. */
function adapt(js: string): string {
  // The generated code reads an environment variable on every call to decide whether to log
  // it (a quarter of a call's time, and it would need the permission): never.
  js = js.replaceAll(DEBUG_CHECK, "false");
  // The canonical ABI allocates every string through the guest's realloc, empty ones too; the
  // generated code skips it for those, and wasmtime's preview1 adapter (in every command
  // component made from a preview1 module) then leaves an empty environment value without its
  // terminating NUL, running it into the next variable.
  js = js.replace(EMPTY_STRING_SHORTCUT, "");
  // What the runner relies on to bound a guest: fail rather than serve without it.
  // (`search`, not `test`: CAPTURE_TABLE is global, and `test` would move its lastIndex.)
  const needed = [CAPTURE_TABLE, HANDLE_TABLE, INSTANTIATE, HOST_CALL];
  if (needed.some((pattern) => js.search(pattern) < 0)) {
    throw new Error(
      `jco-transpile ${JCO_TRANSPILE_VERSION} generated code this server cannot adapt ` +
        "(its resource tables or host calls were not found)",
    );
  }
  // The runner sees what a guest keeps between runs of an instance (see runner.ts).
  js = js.replace(
    CAPTURE_TABLE,
    `const $1 = new Map(); imports[${JSON.stringify(CAPTURE_TABLES_IMPORT)}]?.push($1);`,
  );
  // The runner puts them back with the instance's memory: the handles a run was given die with
  // it.
  js = js.replace(
    HANDLE_TABLE,
    `$& imports[${JSON.stringify(HANDLE_TABLES_IMPORT)}]?.push($1);`,
  );
  // The runner makes the host functions a guest waits on (and sees what they write).
  js = js.replaceAll(SUSPENDING, "wagiSuspending(");
  // Every host call tells the runner first.
  js = js.replace(
    INSTANTIATE,
    (start) =>
      `${start}\n  const wagiOnHostCall = imports[${
        JSON.stringify(HOST_CALL_IMPORT)
      }] ?? (() => {});\n  const wagiSuspending = imports[${
        JSON.stringify(SUSPENDING_IMPORT)
      }] ?? ((f) => ${SUSPENDING}f));`,
  ).replace(HOST_CALL, (start) => `${start}\n  wagiOnHostCall();`);
  // An output stream's write hands the bytes to a sink, and every sink copies what it is given
  // (preview1's fd_write hands them guest memory too); a field's append copies them into a
  // string: no copy before either. Elsewhere the copy stays, made by the typed array (a third
  // of a small write's cost).
  js = js.replace(COPY_FOR_A_COPYING_CALL, "new Uint8Array($1.buffer, $2, $3)$4")
    .replace(BYTES_COPY, "new Uint8Array($1.buffer, $2, $3).slice()");
  // Every host call starts a "task" for the component model's async ABI (WASI 0.3), which a
  // WASI 0.2 component never asks about; making the task object only when asked for halves
  // what a small host call costs.
  if (js.includes(EAGER_TASK) && js.includes(TASK_META) && js.includes(START_TASK)) {
    js = js.replace(EAGER_TASK, "").replace(TASK_META, LAZY_TASK_META)
      .replace(START_TASK, LAZY_TASK_CLASS + START_TASK);
  }
  return js;
}
