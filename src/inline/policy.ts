/**
 * What a guest may do while it runs on the server's thread: the calls whose declared effect
 * (see wasi/effects.ts) ends with the run — reading arguments, clocks and files, writing
 * stdout and stderr, which are kept in memory. Any other call, such as writing a file or
 * sleeping, throws {@link MoveToPool} before it happens: the run is dropped and done again from
 * the start in the worker pool, which nothing the guest did so far can tell apart from a
 * first run.
 * @module
 */

import { Unwind } from "../wasi/syscall.ts";
import { CALL_EFFECTS } from "../wasi/host.ts";
import type { Effect } from "../wasi/effects.ts";
import type { WasiState } from "../wasi/state.ts";

/** Thrown to abandon a run on the server's thread; `reason` says why (for tests and logs). */
export class MoveToPool extends Unwind {
  constructor(readonly reason: string) {
    super();
  }
}

/**
 * Work done in host calls that the guest's fuel does not see: the bytes they move (each call
 * itself is charged to the fuel, in the guest; see wasm/metering.ts). A run that spends the
 * budget is abandoned ({@link MoveToPool}), so that host calls moving much data cannot hold the
 * server's thread much longer than guest code can. Units are the fuel's (about an instruction).
 */
export class HostBudget {
  spent = 0;
  constructor(readonly limit: number) {}

  /** Charges `units`; throws once the run has spent more than its budget. */
  charge(units: number): void {
    if ((this.spent += units) > this.limit) throw new MoveToPool("host calls ran too long");
  }
}

/** The effects a run on the server's thread may have: none that outlives it or waits. */
const ALLOWED: ReadonlySet<Effect> = new Set(["pure", "run-local"]);

type Call = (...args: never[]) => unknown;

/**
 * The WASI imports `imports` (of the host whose state is `state`) limited for a run on the
 * server's thread: a call with another effect throws {@link MoveToPool} naming it instead.
 */
export function inlineImports(
  imports: WebAssembly.Imports,
  state: WasiState,
): WebAssembly.Imports {
  const limited: WebAssembly.Imports = {};
  for (const [moduleName, calls] of Object.entries(imports)) {
    const table: Record<string, Call> = {};
    for (const [name, call] of Object.entries(calls as Record<string, Call>)) {
      // A call that declares nothing is taken to have a lasting effect.
      const effect = CALL_EFFECTS[name] ?? "lasting";
      if (typeof effect === "string") {
        table[name] = ALLOWED.has(effect) ? call : () => {
          throw new MoveToPool(name);
        };
      } else {
        const decide = effect as (state: WasiState, ...args: unknown[]) => Effect;
        const run = call as (...args: unknown[]) => unknown;
        table[name] = (...args: unknown[]) => {
          if (!ALLOWED.has(decide(state, ...args))) throw new MoveToPool(name);
          return run(...args);
        };
      }
    }
    limited[moduleName] = table;
  }
  return limited;
}
