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
 * Work done in host calls, which the guest's fuel does not see: each call and each byte it
 * moves is charged, and a run that spends the budget is abandoned ({@link MoveToPool}), so
 * that a loop of host calls cannot hold the server's thread much longer than guest code can.
 * Units are the fuel's (about an instruction each).
 */
export class HostBudget {
  spent = 0;
  constructor(readonly limit: number) {}

  /** Charges `units`; throws once the run has spent more than its budget. */
  charge(units: number): void {
    if ((this.spent += units) > this.limit) throw new MoveToPool("host calls ran too long");
  }
}

/** What a host call costs at least, in fuel units: about a microsecond of guest work. */
const CALL_COST = 1000;

/** The effects a run on the server's thread may have: none that outlives it or waits. */
const ALLOWED: ReadonlySet<Effect> = new Set(["pure", "run-local"]);

type Call = (...args: never[]) => unknown;

/**
 * The WASI imports `imports` (of the host whose state is `state`) limited for a run on the
 * server's thread: a call with another effect throws {@link MoveToPool} naming it instead,
 * and every call is charged to `budget`.
 */
export function inlineImports(
  imports: WebAssembly.Imports,
  state: WasiState,
  budget: HostBudget,
): WebAssembly.Imports {
  const limited: WebAssembly.Imports = {};
  for (const [moduleName, calls] of Object.entries(imports)) {
    const table: Record<string, Call> = {};
    for (const [name, call] of Object.entries(calls as Record<string, Call>)) {
      // A call that declares nothing is taken to have a lasting effect.
      const effect = CALL_EFFECTS[name] ?? "lasting";
      const run = call as (...args: unknown[]) => unknown;
      if (typeof effect === "string") {
        table[name] = ALLOWED.has(effect)
          ? (...args: unknown[]) => {
            budget.charge(CALL_COST);
            return run(...args);
          }
          : () => {
            throw new MoveToPool(name);
          };
      } else {
        const decide = effect as (state: WasiState, ...args: unknown[]) => Effect;
        table[name] = (...args: unknown[]) => {
          if (!ALLOWED.has(decide(state, ...args))) throw new MoveToPool(name);
          budget.charge(CALL_COST);
          return run(...args);
        };
      }
    }
    limited[moduleName] = table;
  }
  return limited;
}
