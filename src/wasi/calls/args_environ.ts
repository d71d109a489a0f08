/**
 * `args_*` and `environ_*`: the guest's argv and environment.
 * @module
 */

import { syscall } from "../syscall.ts";
import type { CStrings, WasiState } from "../state.ts";
import type { EffectTable } from "../effects.ts";
import type { GuestMemory } from "../memory.ts";

/** What each argument and environment call does beyond returning: nothing. */
export const ARGS_ENVIRON_EFFECTS: EffectTable = {
  args_get: "pure",
  args_sizes_get: "pure",
  environ_get: "pure",
  environ_sizes_get: "pure",
};

function sizes(memory: GuestMemory, items: CStrings, countPtr: number, sizePtr: number) {
  memory.setU32(countPtr, items.starts.length);
  memory.setU32(sizePtr, items.bytes.length);
}

function copyOut(memory: GuestMemory, items: CStrings, listPtr: number, bufPtr: number) {
  memory.write(bufPtr, items.bytes);
  for (let i = 0; i < items.starts.length; i++) {
    memory.setU32(listPtr + i * 4, bufPtr + items.starts[i]);
  }
}

/** The argument and environment calls for `host`. */
export function argsEnvironCalls(host: WasiState) {
  const memory = host.memory;
  return {
    args_sizes_get: syscall((countPtr: number, sizePtr: number) =>
      sizes(memory, host.args, countPtr, sizePtr)
    ),
    args_get: syscall((listPtr: number, bufPtr: number) =>
      copyOut(memory, host.args, listPtr, bufPtr)
    ),
    environ_sizes_get: syscall((countPtr: number, sizePtr: number) =>
      sizes(memory, host.env, countPtr, sizePtr)
    ),
    environ_get: syscall((listPtr: number, bufPtr: number) =>
      copyOut(memory, host.env, listPtr, bufPtr)
    ),
  };
}
