/**
 * Making a module stoppable from outside, the way wasmtime's epoch interruption does: the
 * module is metered (see metering.ts), and when its fuel runs out it calls an imported host
 * function that either gives it more or answers that it must stop, upon which it traps. A
 * guest in an endless loop therefore stops by itself within one refill of its deadline, on
 * whatever thread it runs; nothing has to kill that thread.
 * @module
 */

import { addFunctionImport } from "./function_import.ts";
import { meter, type MeteredModule } from "./metering.ts";
import { PREEMPT_FUEL, PREEMPT_FUNCTION, PREEMPT_MODULE } from "./contract.ts";

/**
 * Returns `wasm` metered, importing `__wagi.refuel: () -> i32` to ask for more fuel (a
 * negative answer makes it trap). Throws when the module uses something the rewrite does not
 * know: such a module could not be stopped, and must not run.
 */
export function makePreemptible(wasm: Uint8Array): Uint8Array {
  return preemptibleModule(wasm).bytes;
}

/**
 * {@link makePreemptible}, with what the metering learnt: which mutable globals the module
 * exports for a runner to put back, and whether an instance may be reused at all.
 */
export function preemptibleModule(wasm: Uint8Array): MeteredModule {
  const withImport = addFunctionImport(wasm, PREEMPT_MODULE, PREEMPT_FUNCTION, [], [0x7f]);
  return meter(withImport.bytes, PREEMPT_FUEL, withImport.index);
}
