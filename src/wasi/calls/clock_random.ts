/**
 * `clock_*` and `random_get`.
 * @module
 */

import { ClockId } from "../constants.ts";
import { Errno, WasiError } from "../errno.ts";
import { syscall } from "../syscall.ts";
import type { WasiState } from "../state.ts";
import type { EffectTable } from "../effects.ts";

/** `performance.now()` is milliseconds since this origin: monotonic nanoseconds come from it. */
const ORIGIN_NS = BigInt(Math.round(performance.timeOrigin * 1e6));

/** The current time of clock `id` in nanoseconds; `INVAL` for an unknown clock. */
export function clockNow(id: number): bigint {
  switch (id) {
    case ClockId.REALTIME:
      // timeOrigin + now() is wall-clock time with sub-millisecond precision (Date.now() has
      // whole milliseconds, which made sleeps on the realtime clock end up to 1 ms early).
      return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
    case ClockId.MONOTONIC:
    case ClockId.PROCESS_CPUTIME:
    case ClockId.THREAD_CPUTIME:
      // CPU time is not observable from Deno; elapsed time is an upper bound that keeps going up.
      return ORIGIN_NS + BigInt(Math.round(performance.now() * 1e6));
    default:
      throw new WasiError(Errno.INVAL);
  }
}

/** Largest chunk `crypto.getRandomValues` accepts. */
const RANDOM_CHUNK = 65536;

/** What each clock and randomness call does beyond returning: nothing. */
export const CLOCK_RANDOM_EFFECTS: EffectTable = {
  clock_res_get: "pure",
  clock_time_get: "pure",
  random_get: "pure",
};

/** The clock and randomness calls for `host`. */
export function clockRandomCalls(host: WasiState) {
  const memory = host.memory;
  return {
    clock_res_get: syscall((id: number, resultPtr: number) => {
      if (id < ClockId.REALTIME || id > ClockId.THREAD_CPUTIME) throw new WasiError(Errno.INVAL);
      memory.setU64(resultPtr, 1_000n);
    }),
    clock_time_get: syscall((id: number, _precision: bigint, resultPtr: number) => {
      memory.setU64(resultPtr, clockNow(id));
    }),
    random_get: syscall((bufPtr: number, len: number) => {
      const target = memory.writable(bufPtr, len);
      for (let at = 0; at < len; at += RANDOM_CHUNK) {
        crypto.getRandomValues(target.subarray(at, Math.min(len, at + RANDOM_CHUNK)));
      }
    }),
  };
}
