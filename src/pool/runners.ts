/**
 * A worker's runners, one per module it was sent, each keeping its module's instance between
 * runs (see run/guest.ts): the memory those instances hold is bounded per worker, the modules
 * used least recently letting go of theirs first.
 * @module
 */

/** What the worker keeps per module: a runner and the memory its kept instance holds. */
export interface KeepingRunner {
  /** Linear memory of the instance kept for the next run (0 when none is). */
  readonly keptBytes: number;
  /** Lets go of the kept instance. */
  letGo(): void;
}

/**
 * Linear memory the kept instances of one worker may hold in all. Putting an instance back
 * touches all of its memory, so this is resident memory, per worker.
 */
export const KEPT_BYTES_PER_WORKER = 8 * 1024 * 1024;

/** Runners by module id, least recently used first. */
export class Runners<R extends KeepingRunner> {
  readonly #byId = new Map<number, R>();

  constructor(readonly budgetBytes = KEPT_BYTES_PER_WORKER) {}

  /** The runner of module `id`, if the worker has it. */
  get(id: number): R | undefined {
    return this.#byId.get(id);
  }

  /** Adds (or replaces) the runner of module `id`. */
  set(id: number, runner: R): void {
    this.#byId.delete(id);
    this.#byId.set(id, runner);
  }

  /** Drops the runners of modules no longer served. */
  forget(ids: readonly number[]): void {
    for (const id of ids) this.#byId.delete(id);
  }

  /**
   * Marks module `id` as just used, then lets go of the instances of the modules used least
   * recently until the kept memory is within the budget (the one just used keeps its own).
   */
  used(id: number): void {
    const runner = this.#byId.get(id);
    if (!runner) return;
    this.set(id, runner);
    let total = 0;
    for (const r of this.#byId.values()) total += r.keptBytes;
    for (const [other, r] of this.#byId) {
      if (total <= this.budgetBytes) break;
      if (other === id || r.keptBytes === 0) continue;
      total -= r.keptBytes;
      r.letGo();
    }
  }
}
