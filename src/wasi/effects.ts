/**
 * What a WASI call does beyond returning: each call declares it next to its implementation
 * (in `calls/`), so that an embedder can decide which calls a run may make where, without
 * knowing how each call works.
 * @module
 */

import type { WasiState } from "./state.ts";

/**
 * - `pure`: reads the run's inputs or the world (arguments, clocks, files) and writes guest
 *   memory only;
 * - `run-local`: also changes state that belongs to this run alone (its descriptor table,
 *   the stdin it consumed, the stdout and stderr it wrote);
 * - `lasting`: changes something that outlives the run (a file, a directory);
 * - `blocking`: waits (a sleep).
 */
export type Effect = "pure" | "run-local" | "lasting" | "blocking";

/** A call's effect: fixed, or decided from the state and the call's own arguments. */
export type EffectOf = Effect | ((state: WasiState, ...args: never[]) => Effect);

/** The effects of a group of calls, by import name. */
export type EffectTable = Record<string, EffectOf>;
