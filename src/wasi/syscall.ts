/**
 * The plumbing every WASI call shares: how a host failure becomes an errno, and the signals
 * that unwind the guest instead (`proc_exit`, or the embedder's own).
 * @module
 */

import { Errno, errnoOf } from "./errno.ts";

/**
 * Thrown through a WASI call to end the guest's run rather than answer it: a call never turns
 * one into an errno. The embedder may extend it for its own reasons to stop a guest.
 */
export class Unwind {}

/** Thrown by `proc_exit` to unwind the guest; the runner catches it and reads `code`. */
export class ProcExit extends Unwind {
  constructor(readonly code: number) {
    super();
  }
}

/** A table of WASI import functions. */
export type CallTable = Record<string, (...args: never[]) => number>;

/** Wraps a host function so that any failure becomes an errno and an {@link Unwind} passes. */
export function syscall<A extends unknown[]>(
  fn: (...args: A) => number | void,
): (...args: A) => number {
  return (...args: A): number => {
    try {
      return fn(...args) ?? Errno.SUCCESS;
    } catch (error) {
      if (error instanceof Unwind) throw error;
      return errnoOf(error);
    }
  };
}
