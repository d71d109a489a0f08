/**
 * `proc_exit`, `proc_raise` and `sched_yield`.
 * @module
 */

import { Errno } from "../errno.ts";
import { ProcExit } from "../syscall.ts";
import type { EffectTable } from "../effects.ts";

/** What each process call does beyond returning (see effects.ts). */
export const PROC_EFFECTS: EffectTable = {
  // Exiting ends the run, nothing beyond it.
  proc_exit: "run-local",
  proc_raise: "pure",
  sched_yield: "pure",
};

/** The process calls. */
export function procCalls() {
  return {
    proc_exit: (code: number): number => {
      throw new ProcExit(code >>> 0);
    },
    // Signals are not part of the sandbox; wasmtime answers the same.
    proc_raise: (_signal: number): number => Errno.NOSYS,
    sched_yield: (): number => Errno.SUCCESS,
  };
}
