/**
 * `args_*` and `environ_*`: the guest's argv and environment.
 * @module
 */

import { type CStrings, syscall, type WasiHost } from "../host.ts";
import type { GuestMemory } from "../memory.ts";

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
export function argsEnvironCalls(host: WasiHost) {
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
