/**
 * What jco's code writes into a guest's memory, marked in the chunk maps of core modules that
 * track their own writes (wasm/write_tracking.ts), so that a kept instance is put back by
 * copying the chunks a run wrote rather than all of its memory.
 *
 * By the canonical ABI the host writes only two places: memory the guest's `realloc` has just
 * handed it (lists, strings), and the return area whose address the guest passes as an
 * import's last argument. {@link scanHostWrites} reads jco's code to confirm that every write in
 * it is one of those and to learn the largest return area; {@link HostWriteMarks} marks them as
 * they happen. Code with any other write is not tracked: its instances are put back whole.
 * @module
 */

import { markChunks } from "../wasm/contract.ts";

/** JSPI's wrapper of a host function that returns a promise (not in TypeScript's lib yet). */
export const Suspending = (WebAssembly as unknown as {
  Suspending: new (call: (...args: unknown[]) => unknown) => object;
}).Suspending;

/** Every place jco's code reaches a guest memory. */
const MEMORY_ACCESS = /dataView\(memory\d*\)|\bmemory\d*\.buffer/g;

const TYPED = "(?:Int|Uint|BigInt|BigUint|Float)(8|16|32|64)";

/** A read through the shared DataView. */
const FIELD_READ = new RegExp(`dataView\\(memory\\d+\\)\\.get${TYPED}\\(`, "y");
/** A write into an import's return area: its last argument plus an offset. */
const RETURN_AREA_WRITE = new RegExp(
  `dataView\\(memory\\d+\\)\\.set${TYPED}\\((arg\\d+) \\+ (\\d+),`,
  "y",
);
/** A write into an element of a list that `realloc` gave (`base` is its address). */
const ELEMENT_WRITE = new RegExp(`dataView\\(memory\\d+\\)\\.set${TYPED}\\(base \\+ \\d+,`, "y");
/** A list's bytes copied in at an address that `realloc` gave. */
const BYTES_WRITE = /memory\d+\.buffer, (ptr\d+), len\d+ \* \d+\)\)\.set\(src\d+\)/y;
/** `utf8Encode`'s copy, into what `realloc` gave. */
const STRING_WRITE = /memory\.buffer\)\.set\(buf, ptr\)/y;
/** A view of guest bytes, for reading (decoded, copied, or handed to the host to copy). */
const BYTES_READ = /memory\d+\.buffer, ptr\d+, len\d+\)(?!\)\.set)/y;

/**
 * Function heads, to find the function a write is in: its name (none for the host functions a
 * guest waits on, made as `wagiSuspending(async function(…) {…})`) and its parameters.
 */
const FUNCTION_HEAD = /function\s*([\w$]*)\s*\(([^)]*)\)\s*\{/g;

/** The host functions jco makes for a core module's imports (its "trampolines"). */
const HOST_FUNCTION = /^trampoline\d+$|^$/;

/** What a transpiled component's host writes need; a string says why they cannot be marked. */
export type HostWrites = { returnAreaBytes: number } | string;

/** A function's head: where its body starts, its name and its parameter names. */
interface FunctionHead {
  at: number;
  name: string;
  params: string[];
}

/** The last of `heads` (in order) before `at`: the function around it. */
function enclosingFunction(heads: FunctionHead[], at: number): FunctionHead | undefined {
  let low = 0, high = heads.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (heads[middle].at <= at) low = middle + 1;
    else high = middle;
  }
  return heads[low - 1];
}

/** Checks jco's code `js` as the module doc says: what marking its writes needs, or why not. */
export function scanHostWrites(js: string): HostWrites {
  if (/\bdv\.set/.test(js)) return "it writes through its DataView directly";
  // Each must be made by the runner (transpile.ts's SUSPENDING_IMPORT), which marks what it
  // writes: the only other one left is the default for when the runner does not.
  const suspendings = js.match(/WebAssembly\.Suspending\(/g)?.length ?? 0;
  const fallbacks = js.match(/\?\? \(\(f\) => new WebAssembly\.Suspending\(f\)\)/g)?.length ?? 0;
  if (suspendings !== fallbacks) return "it makes host functions a guest waits on itself";
  const heads: FunctionHead[] = [...js.matchAll(FUNCTION_HEAD)].map((m) => ({
    at: m.index! + m[0].length,
    name: m[1],
    params: m[2].split(",").map((p) => p.trim()).filter((p) => p !== ""),
  }));
  let returnAreaBytes = 0;
  for (const access of js.matchAll(MEMORY_ACCESS)) {
    const at = access.index!;
    const match = (form: RegExp) => {
      form.lastIndex = at;
      return form.exec(js);
    };
    if (match(FIELD_READ) || match(BYTES_READ)) continue;
    const fn = enclosingFunction(heads, at);
    const body = fn ? js.slice(fn.at, at) : "";
    const returned = match(RETURN_AREA_WRITE);
    if (returned) {
      // Only an import's host function is marked (see HostWriteMarks.imports).
      if (!fn || !HOST_FUNCTION.test(fn.name) || fn.params.at(-1) !== returned[2]) {
        return `it writes at ${returned[2]}, not the last argument of a host function`;
      }
      returnAreaBytes = Math.max(returnAreaBytes, Number(returned[3]) + Number(returned[1]) / 8);
      continue;
    }
    if (match(ELEMENT_WRITE)) {
      const base = [...body.matchAll(/const base = ([\w$]+) \+ i \* \d+;/g)].at(-1)?.[1];
      if (base && new RegExp(`var ${base} = realloc\\d+\\(`).test(body)) continue;
      return "it writes a list element it did not allocate";
    }
    const bytes = match(BYTES_WRITE);
    if (bytes) {
      if (new RegExp(`var ${bytes[1]} = realloc\\d+\\(`).test(body)) continue;
      return "it writes bytes where it did not allocate";
    }
    if (
      match(STRING_WRITE) &&
      /let ptr = realloc\(0, 0, 1, buf\.length\);\s*new Uint8Array\($/.test(body)
    ) {
      continue;
    }
    return `it reaches guest memory in an unknown way (${js.slice(at, at + 60)})`;
  }
  return { returnAreaBytes };
}

/** The host functions of one instance, marking what they write; and its `realloc`s. */
export class HostWriteMarks {
  /** The chunk maps of the instance's tracked memories (usually one). */
  readonly #maps: Uint8Array[] = [];
  /** Functions of the instance's core modules (not wrapped when another imports them). */
  readonly #wasm = new Set<unknown>();
  /** Our wrappers of exported functions, and what they wrap. */
  readonly #wrapped = new Map<unknown, unknown>();
  /** The `WebAssembly.Suspending`s made by {@link suspending}. */
  readonly #suspending = new WeakSet<object>();

  constructor(readonly returnAreaBytes: number) {}

  /** Marks writes in `map` too, the chunk map of a tracked memory. */
  addMap(map: Uint8Array): void {
    this.#maps.push(map);
  }

  #mark(at: number, length: number): void {
    // An i32 above 2 GiB arrives negative: as an address, it is unsigned. A range past 4 GiB
    // would wrap around in markChunks' 32-bit arithmetic, and mark nothing.
    at >>>= 0;
    length = Math.min(length, 2 ** 32 - at);
    for (const map of this.#maps) markChunks(map, at, length);
  }

  /**
   * `given` imports for a core module: each host function (not one of another core module's)
   * marks the return area at its last argument before it runs. Any import that is neither a
   * function nor a memory, table or global makes the answer undefined: not understood.
   */
  imports(given: WebAssembly.Imports): WebAssembly.Imports | undefined {
    const out: WebAssembly.Imports = {};
    for (const [moduleName, fields] of Object.entries(given)) {
      const table: Record<string, unknown> = {};
      for (const [name, value] of Object.entries(fields)) {
        const original = this.#wrapped.get(value) ?? value;
        if (this.#suspending.has(original as object)) table[name] = original;
        else if (typeof original !== "function") {
          if (
            !(original instanceof WebAssembly.Memory || original instanceof WebAssembly.Table ||
              original instanceof WebAssembly.Global)
          ) return undefined;
          table[name] = original;
        } else if (this.#wasm.has(original)) table[name] = original;
        else table[name] = this.#markingReturnArea(original as (...args: unknown[]) => unknown);
      }
      out[moduleName] = table as WebAssembly.ModuleImports;
    }
    return out;
  }

  /**
   * A host function a guest waits on (under JSPI), as a `WebAssembly.Suspending` that marks
   * the return area at its last argument before it runs.
   */
  suspending(call: (...args: unknown[]) => Promise<unknown>): object {
    const made = new Suspending(this.#markingReturnArea(call));
    this.#suspending.add(made);
    return made;
  }

  #markingReturnArea(call: (...args: unknown[]) => unknown): (...args: unknown[]) => unknown {
    const bytes = this.returnAreaBytes;
    return (...args: unknown[]) => {
      const last = args[args.length - 1];
      if (typeof last === "number") this.#mark(last, bytes);
      return call(...args);
    };
  }

  /**
   * An instance's exports as jco's code should see them: a function of four parameters (a
   * `realloc`, as the canonical ABI calls it) marks the bytes it hands out.
   */
  exports(instance: WebAssembly.Instance): { exports: WebAssembly.Exports } {
    const exports: WebAssembly.Exports = {};
    for (const [name, value] of Object.entries(instance.exports)) {
      if (typeof value !== "function") {
        exports[name] = value;
        continue;
      }
      this.#wasm.add(value);
      if (value.length !== 4) {
        exports[name] = value;
        continue;
      }
      const realloc = value as (
        old: number,
        size: number,
        align: number,
        length: number,
      ) => unknown;
      const wrapper = (old: number, size: number, align: number, length: number) => {
        const at = realloc(old, size, align, length);
        if (typeof at === "number" && typeof length === "number") this.#mark(at, length);
        return at;
      };
      this.#wrapped.set(wrapper, value);
      exports[name] = wrapper;
    }
    return { exports };
  }
}
