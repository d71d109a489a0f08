/**
 * Capping a module's linear memory: the memory section of the binary is rewritten once at
 * load time so that every memory it defines declares a maximum no larger than the limit.
 * `memory.grow` past it then fails inside the guest (returns -1), as the spec says.
 * @module
 */

import { readU32, writeU32 } from "./binary.ts";

/** A WebAssembly page: the unit memories are sized and grown in. */
export const WASM_PAGE_BYTES = 65536;

const MEMORY_SECTION = 5;

/**
 * Returns `wasm` with every defined 32-bit memory's maximum lowered to `maxBytes` (rounded
 * down to pages). Throws when a memory's initial size is already above the limit. Modules
 * without a memory section come back unchanged.
 */
export function limitMemory(wasm: Uint8Array, maxBytes: number): Uint8Array {
  const maxPages = Math.floor(maxBytes / WASM_PAGE_BYTES);
  let at = 8;
  while (at < wasm.length) {
    const id = wasm[at];
    const [size, payload] = readU32(wasm, at + 1);
    if (id !== MEMORY_SECTION) {
      at = payload + size;
      continue;
    }
    const [count, first] = readU32(wasm, payload);
    const section: number[] = writeU32(count);
    let cursor = first;
    for (let i = 0; i < count; i++) {
      const flags = wasm[cursor++];
      if (flags & 0x04) throw new Error("64-bit memories are not supported");
      let min: number;
      [min, cursor] = readU32(wasm, cursor);
      let max = Infinity;
      if (flags & 0x01) [max, cursor] = readU32(wasm, cursor);
      if (min > maxPages) {
        throw new Error(
          `its memory starts at ${min * WASM_PAGE_BYTES} bytes, above the limit of ${maxBytes}`,
        );
      }
      section.push(flags | 0x01, ...writeU32(min), ...writeU32(Math.min(max, maxPages)));
    }
    const header = [MEMORY_SECTION, ...writeU32(section.length)];
    const out = new Uint8Array(at + header.length + section.length + wasm.length - cursor);
    out.set(wasm.subarray(0, at));
    out.set(header, at);
    out.set(section, at + header.length);
    out.set(wasm.subarray(cursor), at + header.length + section.length);
    return out;
  }
  return wasm;
}
