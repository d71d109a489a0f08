/**
 * Guest-memory layouts of WASI preview1 records (`iovec`, `fdstat`, `filestat`, `dirent`,
 * `subscription`): the offsets of the specification's tables live here, and preview 0's
 * differences in preview0.ts.
 * @module
 */

import type { Descriptor, Filestat } from "./descriptors.ts";
import type { GuestMemory } from "./memory.ts";

/** The records whose layout differs between the two snapshots. */
export interface SnapshotLayout {
  /** Writes a `filestat` at `ptr`. */
  writeFilestat(memory: GuestMemory, ptr: number, stat: Filestat): void;
  /** The preview1 `whence` for the guest's value; undefined when it is not one. */
  whence(value: number): number | undefined;
  /** Size of a `subscription`, and where its clock fields (id, timeout, …) start. */
  subscriptionSize: number;
  subscriptionClockAt: number;
}

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
  memory.setU64(ptr + 8, BigInt(descriptor.rightsBase));
  memory.setU64(ptr + 16, BigInt(descriptor.rightsInheriting));
}

/** The preview1 layouts. */
export const PREVIEW1_LAYOUT: SnapshotLayout = {
  /** A `filestat` is 64 bytes. */
  writeFilestat(memory, ptr, stat) {
    memory.setU64(ptr, stat.dev);
    memory.setU64(ptr + 8, stat.ino);
    memory.setU8(ptr + 16, stat.filetype);
    memory.setU64(ptr + 24, stat.nlink);
    memory.setU64(ptr + 32, stat.size);
    memory.setU64(ptr + 40, stat.atim);
    memory.setU64(ptr + 48, stat.mtim);
    memory.setU64(ptr + 56, stat.ctim);
  },
  // Checked by the descriptor that seeks.
  whence: (value) => value,
  subscriptionSize: 48,
  subscriptionClockAt: 16,
};

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
