/**
 * Running a component to its end on the calling thread (a pool worker, or the `run` command):
 * a fresh instance for every run (as `wasmtime serve` and Spin promise), linked by jco's code to
 * this host's WASI 0.2 interfaces, its core modules asking the run for fuel like any
 * preemptible module. An HTTP component is handed the request and its body; a command
 * component runs CGI-style, like a WAGI module. Every way a run ends is in its result.
 * @module
 */

import type { WasiOptions } from "../wasi/state.ts";
import { ProcExit } from "../wasi/syscall.ts";
import { describeFailure, type GuestControl, type GuestEnd } from "../run/guest.ts";
import { PREEMPT_FUEL, PREEMPT_FUNCTION, PREEMPT_MODULE } from "../wasm/contract.ts";
import type { ComponentParts, HttpRequestHead } from "../run/module_component.ts";
import { ioImports } from "./host/io.ts";
import { httpTypesImports, IncomingRequest, ResponseOutparam } from "./host/http.ts";
import { cliImports } from "./host/cli.ts";

/** Every interface this host provides (names without version): others are refused at load. */
export const PROVIDED_INTERFACES: ReadonlySet<string> = new Set(
  Object.keys(componentImports({
    args: [],
    env: [],
    stdin: { read: () => 0, available: () => 0 },
    stdout: { write() {} },
    stderr: { write() {} },
  })),
);

/** The host's interfaces for one run, as jco's generated code imports them. */
function componentImports(wasi: WasiOptions): Record<string, Record<string, unknown>> {
  return { ...ioImports(), ...httpTypesImports(), ...cliImports(wasi) };
}

/** jco's `instantiate`, as its generated code exports it. */
type Instantiate = (
  getCoreModule: (name: string) => WebAssembly.Module,
  imports: Record<string, unknown>,
  instantiateCore: (module: WebAssembly.Module, imports: WebAssembly.Imports) => unknown,
) => unknown;

/** What an HTTP component exports, and a command component. */
interface HttpExports {
  incomingHandler: { handle(request: IncomingRequest, out: ResponseOutparam): void };
}
interface CommandExports {
  run: { run(): void };
}

const NO_CONTROL: GuestControl = {
  refuel: () => PREEMPT_FUEL,
  signal: new AbortController().signal,
};

/** Runs one component again and again, a fresh instance each time (see the module doc). */
export class ComponentRunner {
  #instantiate: Promise<Instantiate> | undefined;

  constructor(readonly module: WebAssembly.Module, readonly parts: ComponentParts) {}

  /** An instance is never kept: there is nothing to let go. */
  get keptBytes(): number {
    return 0;
  }
  letGo(): void {}

  /** The core modules that ask for fuel (made preemptible), found once. */
  get #fuelled(): ReadonlySet<WebAssembly.Module> {
    this.#fuelledCores ??= new Set(
      Object.values(this.parts.cores).filter((core) =>
        WebAssembly.Module.imports(core).some((i) => i.module === PREEMPT_MODULE)
      ),
    );
    return this.#fuelledCores;
  }
  #fuelledCores: Set<WebAssembly.Module> | undefined;

  /** jco's code, imported once per runner (from text: it was generated at load). */
  #code(): Promise<Instantiate> {
    this.#instantiate ??= (async () => {
      const url = URL.createObjectURL(new Blob([this.parts.js], { type: "text/javascript" }));
      try {
        return (await import(url)).instantiate as Instantiate;
      } finally {
        URL.revokeObjectURL(url);
      }
    })();
    return this.#instantiate;
  }

  /**
   * Runs the component: an HTTP one serves `request` (its body is `wasi.stdin`, its response
   * goes to `wasi.stdout` as a CGI block), a command one runs with `wasi` as a WAGI module
   * does. `control` stops it from outside. Never rejects.
   */
  async run(
    wasi: WasiOptions,
    control: GuestControl = NO_CONTROL,
    request?: HttpRequestHead,
  ): Promise<GuestEnd> {
    const memories: WebAssembly.Memory[] = [];
    const memoryBytes = () => memories.reduce((sum, m) => sum + m.buffer.byteLength, 0);
    const fuelled = this.#fuelled;
    try {
      const instantiate = await this.#code();
      const cores = this.parts.cores;
      const linkCore = (module: WebAssembly.Module, given?: WebAssembly.Imports) => {
        const imports = fuelled.has(module)
          ? { ...given, [PREEMPT_MODULE]: { [PREEMPT_FUNCTION]: control.refuel } }
          : given;
        const instance = new WebAssembly.Instance(module, imports);
        for (const value of Object.values(instance.exports)) {
          if (value instanceof WebAssembly.Memory) memories.push(value);
        }
        return instance;
      };
      // Every core module is already compiled, and linking is synchronous: so is this.
      const exports = await instantiate((name) => cores[name], componentImports(wasi), linkCore);
      if (this.parts.world === "command") {
        (exports as CommandExports).run.run();
        return { exitCode: 0, memoryBytes: memoryBytes() };
      }
      if (!request) throw new Error("an HTTP component runs for a request only");
      let answeredError: string | undefined;
      const target = {
        stdout: wasi.stdout,
        set: false,
        failed: (why: string) => answeredError = why,
      };
      (exports as HttpExports).incomingHandler.handle(
        new IncomingRequest(request, wasi.stdin),
        new ResponseOutparam(target),
      );
      const failure = answeredError ??
        (target.set ? undefined : "the component returned without setting a response");
      return { exitCode: 0, failure, memoryBytes: memoryBytes() };
    } catch (error) {
      if (error instanceof ProcExit) return { exitCode: error.code, memoryBytes: memoryBytes() };
      // `wasi:cli/run.run` answering its error case: a failed command, as exit code 1.
      if (isComponentError(error)) return { exitCode: 1, memoryBytes: memoryBytes() };
      return { exitCode: 0, failure: describeFailure(error), memoryBytes: memoryBytes() };
    }
  }
}

/** jco throws its own error class for an export's `result` error case. */
function isComponentError(error: unknown): boolean {
  return (error as Error)?.constructor?.name === "ComponentError";
}
