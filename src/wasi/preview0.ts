/**
 * `wasi_unstable` (preview 0) as an adapter over preview1: the calls are preview1's, with the
 * few records that differ laid out as preview 0 has them. Every difference is here.
 * @module
 */

import { Whence } from "./constants.ts";
import type { SnapshotLayout } from "./layout.ts";

/** Preview 0 numbers `whence` CUR=0, END=1, SET=2; preview1 SET=0, CUR=1, END=2. */
const PREVIEW0_WHENCE = [Whence.CUR, Whence.END, Whence.SET];

/** The preview 0 layouts. */
export const PREVIEW0_LAYOUT: SnapshotLayout = {
  /** A `filestat` is 56 bytes: `nlink` is a u32, and the later fields sit 8 bytes earlier. */
  writeFilestat(memory, ptr, stat) {
    memory.setU64(ptr, stat.dev);
    memory.setU64(ptr + 8, stat.ino);
    memory.setU8(ptr + 16, stat.filetype);
    memory.setU32(ptr + 20, Number(stat.nlink));
    memory.setU64(ptr + 24, stat.size);
    memory.setU64(ptr + 32, stat.atim);
    memory.setU64(ptr + 40, stat.mtim);
    memory.setU64(ptr + 48, stat.ctim);
  },
  whence: (value) => PREVIEW0_WHENCE[value],
  // A clock subscription has an extra u64 `identifier` before the clock id.
  subscriptionSize: 56,
  subscriptionClockAt: 24,
};
