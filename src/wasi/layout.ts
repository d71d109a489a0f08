/**
 * Guest-memory layouts of WASI records (`iovec`, `fdstat`, `filestat`, `dirent`) for both
 * snapshots: the offsets of the spec's tables live here and nowhere else.
 * @module
 */

import type { Descriptor, Filestat } from "./descriptors.ts";
import type { GuestMemory } from "./memory.ts";
import type { Snapshot } from "./host.ts";

/** Size of an `iovec`/`ciovec`: `buf: u32`, `buf_len: u32`. */
export const IOVEC_SIZE = 8;

/** Size of a `dirent` header, the name follows it. */
export const DIRENT_SIZE = 24;

/** Writes an `fdstat` (24 bytes) for `descriptor`. */
export function writeFdstat(memory: GuestMemory, ptr: number, descriptor: Descriptor): void {
  memory.setU8(ptr, descriptor.filetype);
  memory.setU8(ptr + 1, 0);
  memory.setU16(ptr + 2, descriptor.fdflags);
  memory.setU32(ptr + 4, 0);
  memory.setU64(ptr + 8, descriptor.rightsBase);
  memory.setU64(ptr + 16, descriptor.rightsInheriting);
}

/**
 * Writes a `filestat`: 64 bytes in preview1; 56 in preview 0, whose `nlink` is a u32 and
 * whose later fields sit 8 bytes earlier.
 */
export function writeFilestat(
  memory: GuestMemory,
  ptr: number,
  stat: Filestat,
  snapshot: Snapshot,
): void {
  memory.setU64(ptr, stat.dev);
  memory.setU64(ptr + 8, stat.ino);
  memory.setU8(ptr + 16, stat.filetype);
  if (snapshot === "preview1") {
    memory.setU64(ptr + 24, stat.nlink);
    memory.setU64(ptr + 32, stat.size);
    memory.setU64(ptr + 40, stat.atim);
    memory.setU64(ptr + 48, stat.mtim);
    memory.setU64(ptr + 56, stat.ctim);
  } else {
    memory.setU32(ptr + 20, Number(stat.nlink));
    memory.setU64(ptr + 24, stat.size);
    memory.setU64(ptr + 32, stat.atim);
    memory.setU64(ptr + 40, stat.mtim);
    memory.setU64(ptr + 48, stat.ctim);
  }
}

const direntScratch = new Uint8Array(DIRENT_SIZE);
const direntView = new DataView(direntScratch.buffer);

/** A `dirent` header (next cookie, inode, name length, type) as bytes, in a reused buffer. */
export function direntHeader(next: bigint, ino: bigint, nameLength: number, type: number) {
  direntView.setBigUint64(0, next, true);
  direntView.setBigUint64(8, ino, true);
  direntView.setUint32(16, nameLength, true);
  direntView.setUint32(20, type, true);
  return direntScratch;
}
