/**
 * `args_*` and `environ_*`: the guest's argv and environment.
 * @module
 */

import { syscall, type WasiHost } from "../host.ts";
import type { GuestMemory } from "../memory.ts";

function sizes(memory: GuestMemory, items: Uint8Array[], countPtr: number, sizePtr: number) {
  let size = 0;
  for (const item of items) size += item.length;
  memory.setU32(countPtr, items.length);
  memory.setU32(sizePtr, size);
}

function copyOut(memory: GuestMemory, items: Uint8Array[], listPtr: number, bufPtr: number) {
  let at = bufPtr;
  for (let i = 0; i < items.length; i++) {
    memory.setU32(listPtr + i * 4, at);
    memory.write(at, items[i]);
    at += items[i].length;
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
