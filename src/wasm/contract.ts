/**
 * What a rewritten module and the runtime that runs it agree on: the names of what the
 * rewriters add (metering.ts, write_tracking.ts, preemption.ts) and how the runtime reads it.
 * Kept apart so that running a module never loads the rewriters (a start that reads every
 * module back from --module-cache does not need them).
 * @module
 */

/** The export holding the fuel left (an i32 global): below 0 means the guest ran out. */
export const FUEL_EXPORT = "__wagi_fuel";

/** The export of an i32 global set to 1 when a `memory.grow` was refused (returned -1). */
export const GROW_REFUSED_EXPORT = "__wagi_grow_refused";

/** Prefix of the exports that expose each mutable global, followed by its index. */
export const STATE_GLOBAL_PREFIX = "__wagi_global_";

/** The import module and name of the host function a preemptible module asks for fuel. */
export const PREEMPT_MODULE = "__wagi";
export const PREEMPT_FUNCTION = "refuel";

/**
 * Fuel each refill gives, in instructions (roughly): a fraction of a millisecond to a few
 * milliseconds of guest work between two questions to the host, which cost far less than
 * that. The same is the starting fuel.
 */
export const PREEMPT_FUEL = 2_000_000;

/**
 * log2 of a chunk's size: each byte of the chunk map stands for 1 KiB of guest memory.
 * Smaller chunks copy less back after a run; the map (one 64 KiB WebAssembly page) then covers
 * memories up to 64 MiB.
 */
export const CHUNK_BITS = 10;

/** The export of the chunk map: one byte per chunk of the guest's memory, non-zero if written. */
export const CHUNK_MAP_EXPORT = "__wagi_written";

/**
 * The import (module, name) through which a module that imports its memory marks the chunk map
 * of the memory's owner (see write_tracking.ts).
 */
export const CHUNK_MAP_IMPORT: readonly [string, string] = ["wagi:written", "chunk-map"];

/**
 * A store marks the chunk its first byte falls in; its last byte may be this many bytes into
 * the next chunk (a v128 store writes 16 bytes), so restoring a chunk covers them too.
 */
export const STORE_SPILL = 15;

/** Pages of chunk map (one byte per chunk) for a memory of at most `maxPages` (4 GiB if none). */
export function chunkMapPages(maxPages: number | undefined): number {
  const pages = Math.min(maxPages ?? 65536, 65536);
  return Math.max(1, Math.ceil(pages / 2 ** CHUNK_BITS));
}

/** Marks, in `map`, every chunk that `length` bytes written at `at` touch. */
export function markChunks(map: Uint8Array, at: number, length: number): void {
  if (length <= 0) return;
  const last = (at + length - 1) >>> CHUNK_BITS;
  for (let chunk = at >>> CHUNK_BITS; chunk <= last; chunk++) map[chunk] = 1;
}
