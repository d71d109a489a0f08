/**
 * Running a component on the calling thread (a pool worker, or the `run` command), linked by
 * jco's code to this host's WASI 0.2 interfaces, its core modules asking the run for fuel like
 * any preemptible module. Every run starts from the state the component had right after
 * instantiation (as `wasmtime serve` and Spin promise): one instance is kept and put back to that
 * state between runs (its memories and mutable globals), or made anew when it cannot be. An HTTP
 * component is handed the request and its body; a command component runs CGI-style, like a WAGI
 * module. Every way a run ends is in its result.
 * @module
 */

import type { WasiOptions } from "../wasi/state.ts";
import { ProcExit } from "../wasi/syscall.ts";
import { describeFailure, type GuestControl, type GuestEnd } from "../run/guest.ts";
import { FreshState, StartWatch } from "../run/fresh_state.ts";
import {
  CHUNK_MAP_EXPORT,
  CHUNK_MAP_IMPORT,
  chunkMapPages,
  FUEL_EXPORT,
  GROW_REFUSED_EXPORT,
  PREEMPT_FUEL,
  PREEMPT_FUNCTION,
  PREEMPT_MODULE,
  STATE_GLOBAL_PREFIX,
} from "../wasm/contract.ts";
import type { ComponentParts, HttpRequestHead } from "../run/module_component.ts";
import { ioImports, resetHostBudget } from "./host/io.ts";
import { httpTypesImports, IncomingRequest, ResponseOutparam } from "./host/http.ts";
import { cliImports, RunStdio } from "./host/cli.ts";
import { type OutboundRun, outgoingImports } from "./host/outgoing.ts";
import { DEFAULT_OUTBOUND, type OutboundOptions } from "../outbound_http/names.ts";
import {
  CAPTURE_TABLES_IMPORT,
  HANDLE_TABLES_IMPORT,
  HOST_CALL_IMPORT,
  SUSPENDING_IMPORT,
} from "./transpile.ts";
import { HostWriteMarks, Suspending } from "./host_writes.ts";

/** The host's interfaces, answering from the run in progress. */
function componentImports(
  run: () => RunStdio,
  outbound: () => OutboundRun,
): Record<string, Record<string, unknown>> {
  const out = outgoingImports(outbound);
  const types = httpTypesImports();
  return {
    ...ioImports(),
    ...types,
    "wasi:http/types": { ...types["wasi:http/types"], ...out.types },
    ...out.handler,
    ...cliImports(run),
  };
}

/** Every interface this host provides (names without version): others are refused at load. */
export const PROVIDED_INTERFACES: ReadonlySet<string> = new Set(
  Object.keys(componentImports(noRun, noRun)),
);

function noRun(): never {
  throw new Error("no run in progress");
}

/** jco's `instantiate`, as its generated code exports it. */
type Instantiate = (
  getCoreModule: (name: string) => WebAssembly.Module,
  imports: Record<string, unknown>,
  instantiateCore: (module: WebAssembly.Module, imports?: WebAssembly.Imports) => unknown,
) => unknown;

/** What an HTTP component exports, and a command component. */
interface HttpExports {
  incomingHandler: { handle(request: IncomingRequest, out: ResponseOutparam): unknown };
}
interface CommandExports {
  run: { run(): unknown };
}

const NO_CONTROL: GuestControl = {
  refuel: () => PREEMPT_FUEL,
  signal: new AbortController().signal,
};

/**
 * Memory up to which an instance is put back rather than made anew. Higher than a WAGI
 * module's 2 MiB: making a component costs far more (~2 ms for the C example, ~30 ms for a
 * JavaScript engine of ~10 MiB) than copying its memory back (~0.3 ms for 10 MiB).
 */
const REUSE_MAX_MEMORY_BYTES = 16 * 1024 * 1024;

/**
 * Host calls (the guest's, and the calls into it) after which a kept instance is made anew
 * anyway. What a guest left behind is let go of as it is kept (its tables put back); this bounds
 * the rest: jco numbers every resource it hands over in 30 bits, never reusing a number, and a
 * call hands over a few at most. Over a million runs of the JavaScript example: making an
 * instance anew (30–90 ms for a JavaScript engine) is rare.
 */
const MAX_HOST_CALLS_PER_INSTANCE = 2 ** 26;

/**
 * Host calls between two questions to the run whether it must stop (see `#hostCall`): one can
 * cost a millisecond (a lookup in a large set of fields), so a few.
 */
const HOST_CALLS_PER_CHECK = 8;

/** Thrown out of a host call to end a run that must stop (the guest's own fuel check traps). */
class StoppedInHostCall extends Error {
  override message = "stopped during a host call";
}

/** An instance, and how to put it back to its state right after instantiation. */
interface Instance {
  exports: unknown;
  memories: WebAssembly.Memory[];
  /** One per instance with a memory of its own (and its globals). */
  fresh: FreshState[];
  /** The globals of instances without a memory of their own, and their first values. */
  globals: [WebAssembly.Global, unknown][];
  fuel: WebAssembly.Global[];
  growRefused: WebAssembly.Global[];
  /** jco's tables of the host resources its guest holds, one per resource type. */
  captured: Map<unknown, unknown>[];
  /** Puts both kinds of table back to what they held right after instantiation. */
  resetTables: () => void;
  reusable: boolean;
  /** The runner's count of host calls when it was made. */
  hostCallsAtStart: number;
}

/** Runs one component again and again (see the module doc). */
export class ComponentRunner {
  #instantiate: Promise<Instantiate> | undefined;
  #loaded: Instantiate | undefined;
  #run: RunStdio | undefined;
  #outbound: OutboundRun | undefined;
  #refuel: () => number = NO_CONTROL.refuel;
  #hostCalls = 0;
  /** The instance being made, while it is. */
  #making: Instance | undefined;
  #kept: Instance | undefined;
  /** Core modules that ask for fuel (made preemptible), by module. */
  readonly #fuelled: ReadonlySet<WebAssembly.Module>;
  /** The rewrite's knowledge of each core module, by module. */
  readonly #reuse: Map<WebAssembly.Module, ComponentParts["reuse"][string]>;
  /** Whether instances may serve more than one run at all. */
  readonly #reusable: boolean;
  /** Core modules that mark the chunks of memory they write. */
  readonly #tracked: ReadonlySet<WebAssembly.Module>;

  constructor(readonly module: WebAssembly.Module, readonly parts: ComponentParts) {
    const cores = Object.entries(parts.cores);
    this.#fuelled = new Set(
      cores.map(([, core]) => core).filter((core) =>
        WebAssembly.Module.imports(core).some((i) => i.module === PREEMPT_MODULE)
      ),
    );
    this.#reuse = new Map(cores.map(([name, core]) => [core, parts.reuse[name]]));
    this.#tracked = new Set(parts.tracked.map((name) => parts.cores[name]));
    // Every core module rewritten, and none that can change its instance beyond memory and
    // globals (start functions are watched as they run).
    this.#reusable = cores.every(([name]) => {
      const reuse = parts.reuse[name];
      return reuse !== undefined && reuse.notReusable === undefined;
    });
  }

  /** Linear memory of the instance kept for the next run (0 when none is). */
  get keptBytes(): number {
    return this.#kept ? memoryOf(this.#kept) : 0;
  }

  /** Host resources the kept instance's tables hold (none: a run's are let go of as it ends). */
  get heldResources(): number {
    return this.#kept ? this.#kept.captured.reduce((sum, table) => sum + table.size, 0) : 0;
  }

  /** Lets go of the kept instance: the next run makes a new one. */
  letGo(): void {
    this.#kept = undefined;
  }

  /** jco's code, imported once per runner (from text: it was generated at load). */
  #code(): Promise<Instantiate> {
    this.#instantiate ??= (async () => {
      const url = URL.createObjectURL(new Blob([this.parts.js], { type: "text/javascript" }));
      try {
        return this.#loaded = (await import(url)).instantiate as Instantiate;
      } finally {
        URL.revokeObjectURL(url);
      }
    })();
    return this.#instantiate;
  }

  /** Loads jco's code: once settled, {@link runSync} may be used. */
  async prepare(): Promise<void> {
    await this.#code();
  }

  /** Whether {@link runSync} may be used: the code is loaded, and no call waits for a promise. */
  get runsSync(): boolean {
    return this.#loaded !== undefined && !this.parts.async;
  }

  /** A new instance, its host interfaces answering from whichever run is in progress. */
  #newInstance(instantiate: Instantiate): Instance {
    const made: Instance = {
      exports: undefined,
      memories: [],
      fresh: [],
      globals: [],
      fuel: [],
      growRefused: [],
      captured: [],
      resetTables: () => {},
      reusable: this.#reusable,
      hostCallsAtStart: this.#hostCalls,
    };
    const refuel = () => this.#refuel();
    // What each instance has to put back, recorded once all are made (start functions and
    // jco's own set-up may still write memory while the others are linked).
    const states: { memory?: WebAssembly.Memory; globals: WebAssembly.Global[] }[] = [];
    // Each memory's chunk map, and whether every core module reaching it marks its writes.
    const maps = new Map<WebAssembly.Memory, { map: WebAssembly.Memory; tracked: boolean }>();
    const hostWrites = this.parts.hostWrites;
    let marks = typeof hostWrites === "string"
      ? undefined
      : new HostWriteMarks(hostWrites.returnAreaBytes);
    // The functions its instances export, as they are made.
    const guestFunctions = new WeakSet<object>();
    const linkCore = (module: WebAssembly.Module, given?: WebAssembly.Imports) => {
      const reuse = this.#reuse.get(module);
      const tracks = this.#tracked.has(module);
      let imports = given;
      if (marks && given) {
        // An import not understood: jco's writes cannot all be marked, in any memory.
        imports = marks.imports(given) ?? given;
        if (imports === given) marks = undefined;
      }
      const shared = importedMemory(given);
      if (shared) {
        const owner = maps.get(shared);
        if (!tracks || !owner) maps.set(shared, { map: owner?.map ?? spareMap(), tracked: false });
        // A tracking module marks the owner's map (or, if it has none, one nobody reads).
        if (tracks) {
          const [name, field] = CHUNK_MAP_IMPORT;
          imports = { ...imports, [name]: { [field]: maps.get(shared)!.map } };
        }
      }
      if (this.#fuelled.has(module)) {
        imports = { ...imports, [PREEMPT_MODULE]: { [PREEMPT_FUNCTION]: refuel } };
      }
      // A start function that calls the host may leave a state of its own in each instance.
      // One calling another instance's guest code does not (what that code asks of the host
      // is seen in #hostCall); nor does asking for fuel.
      const watch = reuse?.hasStart && imports
        ? new StartWatch((call) => call === refuel || guestFunctions.has(call as object))
        : undefined;
      if (watch) imports = watch.wrap(imports!);
      const instance = watch
        ? watch.instantiate(module, imports!)
        : { instance: new WebAssembly.Instance(module, imports), startCalledHost: false };
      if (instance.startCalledHost) made.reusable = false;
      const exports = instance.instance.exports;
      // (Not its chunk map, a memory it exports too.)
      const memory = Object.entries(exports).find(([name, value]) =>
        name !== CHUNK_MAP_EXPORT && value instanceof WebAssembly.Memory
      )?.[1] as WebAssembly.Memory | undefined;
      if (memory && !made.memories.includes(memory)) made.memories.push(memory);
      if (memory?.buffer instanceof SharedArrayBuffer) made.reusable = false;
      const ownsMemory = memory !== undefined && shared === undefined;
      if (ownsMemory) {
        const map = exports[CHUNK_MAP_EXPORT];
        const tracked = tracks && map instanceof WebAssembly.Memory;
        maps.set(memory, { map: tracked ? map : spareMap(), tracked });
        if (tracked) marks?.addMap(new Uint8Array(map.buffer));
      }
      const globals = (reuse?.stateGlobals ?? []).map((g) =>
        exports[STATE_GLOBAL_PREFIX + g] as WebAssembly.Global
      );
      states.push({ memory: ownsMemory ? memory : undefined, globals });
      if (exports[FUEL_EXPORT]) made.fuel.push(exports[FUEL_EXPORT] as WebAssembly.Global);
      if (exports[GROW_REFUSED_EXPORT]) {
        made.growRefused.push(exports[GROW_REFUSED_EXPORT] as WebAssembly.Global);
      }
      // jco's code calls the `realloc`s through these: what they hand out is marked.
      const linked = marks ? marks.exports(instance.instance) : instance.instance;
      for (const value of [...Object.values(exports), ...Object.values(linked.exports)]) {
        if (typeof value === "function") guestFunctions.add(value);
      }
      return linked;
    };
    const cores = this.parts.cores;
    const imports: Record<string, unknown> = componentImports(
      () => this.#run!,
      () => this.#outbound!,
    );
    imports[CAPTURE_TABLES_IMPORT] = made.captured;
    // jco's tables of the handles its guest was given, one per resource type.
    const handleTables: unknown[][] = [];
    imports[HANDLE_TABLES_IMPORT] = handleTables;
    imports[HOST_CALL_IMPORT] = () => this.#hostCall();
    imports[SUSPENDING_IMPORT] = (call: (...args: unknown[]) => Promise<unknown>) =>
      marks ? marks.suspending(call) : new Suspending(call);
    // Every core module is already compiled, and linking is synchronous: so is this.
    this.#making = made;
    try {
      made.exports = instantiate((name) => cores[name], imports, linkCore);
    } finally {
      this.#making = undefined;
    }
    if (made.exports instanceof Promise) throw new Error("jco's instantiation did not complete");
    // Without its tables, what a guest leaves behind could not be seen: no second run.
    if (made.captured.length === 0) made.reusable = false;
    if (made.reusable) {
      made.resetTables = tablesReset(made.captured, handleTables);
      for (const { memory, globals } of states) {
        // Put back chunk by chunk when the guest's writes and the host's were all marked.
        const chunks = memory && maps.get(memory);
        const written = marks && chunks?.tracked ? new Uint8Array(chunks.map.buffer) : undefined;
        if (memory) made.fresh.push(new FreshState(memory, globals, written));
        // An instance without a memory of its own: its globals are put back alone.
        else for (const global of globals) made.globals.push([global, global.value]);
      }
    }
    return made;
  }

  /**
   * Called as every host call begins: every few, the run is asked whether it must stop, as
   * when the guest's fuel runs out. Fuel counts the guest's own instructions, so a guest whose
   * time goes into host calls (each cheap to it, some not to the host) would otherwise run on
   * long past its deadline, or hold the server's thread.
   */
  #hostCall(): void {
    // Called as an instance is made (from a start function): its answers may differ from one
    // instance to the next, so the state after it is not one to put back.
    if (this.#making) this.#making.reusable = false;
    if (++this.#hostCalls % HOST_CALLS_PER_CHECK !== 0) return;
    if (this.#refuel() < 0) throw new StoppedInHostCall();
  }

  /** Puts `kept` back to its state after instantiation; false when it cannot be. */
  #putBack(kept: Instance): boolean {
    if (!kept.fresh.every((state) => state.restorable)) return false;
    for (const state of kept.fresh) state.restore();
    for (const [global, value] of kept.globals) global.value = value;
    for (const fuel of kept.fuel) fuel.value = PREEMPT_FUEL;
    for (const refused of kept.growRefused) refused.value = 0;
    return true;
  }

  /**
   * Runs the component: an HTTP one serves `request` (its body is `wasi.stdin`, its response
   * goes to `wasi.stdout` as a CGI block), a command one runs with `wasi` as a WAGI module
   * does. `control` stops it from outside. Never rejects. `memoryBytes` is the memory this run
   * made (0 for an instance put back).
   */
  async run(
    wasi: WasiOptions,
    control: GuestControl = NO_CONTROL,
    request?: HttpRequestHead,
    outbound: OutboundOptions = DEFAULT_OUTBOUND,
  ): Promise<GuestEnd> {
    const instantiate = await this.#code();
    if (!this.parts.async) return this.runSync(wasi, control, request);
    const run = this.#begin(wasi, control, outbound);
    try {
      const instance = this.#instanceFor(run, instantiate);
      // Under JSPI the exports return promises: the guest waits on the network meanwhile.
      const failure = this.parts.world === "command"
        ? await (instance.exports as CommandExports).run.run() as undefined
        : await this.#handle(instance, wasi, request);
      return this.#ended(run, failure);
    } catch (error) {
      return this.#caught(run, error);
    } finally {
      this.#end();
    }
  }

  /**
   * {@link run} without waiting, on the calling thread: for a component whose calls never wait
   * for a promise, once {@link prepare} settled ({@link runsSync}). With `abandonOutbound`, an
   * outbound request is not made: the run ends by throwing what it returns.
   */
  runSync(
    wasi: WasiOptions,
    control: GuestControl = NO_CONTROL,
    request?: HttpRequestHead,
    abandonOutbound?: OutboundRun["abandon"],
  ): GuestEnd {
    const run = this.#begin(wasi, control, DEFAULT_OUTBOUND, abandonOutbound);
    try {
      const instance = this.#instanceFor(run, this.#loaded!);
      let failure: string | undefined;
      if (this.parts.world === "command") (instance.exports as CommandExports).run.run();
      else failure = this.#handle(instance, wasi, request) as string | undefined;
      return this.#ended(run, failure);
    } catch (error) {
      return this.#caught(run, error);
    } finally {
      this.#end();
    }
  }

  /** Sets up a run: its host state, and the kept instance put back (or none, to make one). */
  #begin(
    wasi: WasiOptions,
    control: GuestControl,
    outbound: OutboundOptions,
    abandon?: OutboundRun["abandon"],
  ): RunState {
    resetHostBudget();
    this.#run = new RunStdio(wasi);
    this.#outbound = { options: outbound, signal: control.signal, open: 0, abandon };
    this.#refuel = control.refuel;
    const kept = this.#kept;
    this.#kept = undefined;
    return { instance: kept && this.#putBack(kept) ? kept : undefined, made: -1, control };
  }

  /** The run's instance: the kept one put back, or a new one (its memory is what it made). */
  #instanceFor(run: RunState, instantiate: Instantiate): Instance {
    if (!run.instance) {
      run.instance = this.#newInstance(instantiate);
      run.made = memoryOf(run.instance);
    }
    run.control.instanceReady?.();
    return run.instance;
  }

  #end(): void {
    this.#run = undefined;
    this.#outbound = undefined;
    this.#refuel = NO_CONTROL.refuel;
  }

  /** How a run that returned ended; keeps its instance when it can be. */
  #ended(run: RunState, failure: string | undefined): GuestEnd {
    const instance = run.instance!;
    const made = run.made < 0 ? 0 : run.made;
    if (failure !== undefined) {
      return { exitCode: 0, failure, memoryBytes: Math.max(made, memoryOf(instance)) };
    }
    return { exitCode: 0, memoryBytes: this.#keep(instance, made) };
  }

  /** How a run that threw ended: an exit, a command's error, or a failure (a trap, a stop). */
  #caught(run: RunState, error: unknown): GuestEnd {
    const instance = run.instance;
    const made = run.made < 0 ? 0 : run.made;
    if (instance && error instanceof ProcExit) {
      return { exitCode: error.code, memoryBytes: this.#keep(instance, made) };
    }
    // `wasi:cli/run.run` answering its error case: a failed command, as exit code 1.
    if (instance && isComponentError(error)) {
      return { exitCode: 1, memoryBytes: this.#keep(instance, made) };
    }
    // A trap, a stop: the instance is not trusted again.
    const left = instance ? memoryOf(instance) : 0;
    return { exitCode: 0, failure: describeFailure(error), memoryBytes: Math.max(made, left) };
  }

  /**
   * Serves `request` on `instance`; returns why it failed, if it did (in a promise when the
   * component waits under JSPI).
   */
  #handle(
    instance: Instance,
    wasi: WasiOptions,
    request?: HttpRequestHead,
  ): string | undefined | Promise<string | undefined> {
    if (!request) return "an HTTP component runs for a request only";
    let answeredError: string | undefined;
    const target = {
      stdout: wasi.stdout,
      set: false,
      failed: (why: string) => answeredError = why,
    };
    const handled = (instance.exports as HttpExports).incomingHandler.handle(
      new IncomingRequest(request, wasi.stdin),
      new ResponseOutparam(target),
    );
    const verdict = () =>
      answeredError ??
        (target.set ? undefined : "the component returned without setting a response");
    return handled instanceof Promise ? handled.then(verdict) : verdict();
  }

  /**
   * Keeps `instance` for the next run when it can be put back; returns the memory this run
   * leaves to be collected (`made` when kept, else all of the instance's).
   */
  #keep(instance: Instance, made: number): number {
    const size = memoryOf(instance);
    if (
      instance.reusable &&
      this.#hostCalls - instance.hostCallsAtStart < MAX_HOST_CALLS_PER_INSTANCE &&
      size <= REUSE_MAX_MEMORY_BYTES && instance.fresh.every((state) => state.restorable)
    ) {
      // Its memory will be put back: it will refer to no handle this run was given. What those
      // stood for and the guest never dropped (a JavaScript engine never drops its requests) is
      // let go of now, rather than kept for as long as the instance lives.
      instance.resetTables();
      this.#kept = instance;
      return made;
    }
    return Math.max(made, size);
  }
}

/** What a run holds: the instance it runs on, and the memory it made (-1: none yet). */
interface RunState {
  instance: Instance | undefined;
  made: number;
  control: GuestControl;
}

/**
 * A function putting `captured` and `handleTables` back to what they hold now. As an instance is
 * made they are empty (start functions that call the host make it single-use): cheap to copy.
 */
function tablesReset(captured: Map<unknown, unknown>[], handleTables: unknown[][]): () => void {
  const capturedAtStart = captured.map((table) => [...table]);
  const handlesAtStart = handleTables.map((table) => [...table]);
  return () => {
    captured.forEach((table, i) => {
      table.clear();
      for (const [rep, resource] of capturedAtStart[i]) table.set(rep, resource);
    });
    handleTables.forEach((table, i) => {
      table.length = 0;
      table.push(...handlesAtStart[i]);
    });
  };
}

/** The memory among a core module's imports, if any (its own is then another's). */
function importedMemory(imports: WebAssembly.Imports | undefined): WebAssembly.Memory | undefined {
  for (const fields of Object.values(imports ?? {})) {
    for (const value of Object.values(fields)) {
      if (value instanceof WebAssembly.Memory) return value;
    }
  }
  return undefined;
}

/** A chunk map nobody reads, for a tracking module whose memory is not tracked as a whole. */
function spareMap(): WebAssembly.Memory {
  const pages = chunkMapPages(undefined);
  return new WebAssembly.Memory({ initial: pages, maximum: pages });
}

/** The linear memory of an instance's core modules. */
function memoryOf(instance: Instance): number {
  return instance.memories.reduce((sum, m) => sum + m.buffer.byteLength, 0);
}

/** jco throws its own error class for an export's `result` error case. */
function isComponentError(error: unknown): boolean {
  return (error as Error)?.constructor?.name === "ComponentError";
}
