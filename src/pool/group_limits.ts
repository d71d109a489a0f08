/**
 * A cap on how many runs of one group (one route) hold a worker at once, so that a route whose
 * modules never end (until their timeout) cannot take every worker: other routes keep the rest.
 * @module
 */

/** Running runs per group, and the runs of each group waiting for a slot. */
export class GroupLimits {
  #groups = new Map<string, { running: number; waiting: (() => void)[] }>();
  #closed = false;

  constructor(readonly maxPerGroup: number) {}

  /** Takes a slot of the group if one is free now (see {@link GroupLimits.enter}). */
  tryEnter(name: string | undefined): boolean {
    if (name === undefined) return true;
    const group = this.#groups.get(name);
    if (!group) {
      this.#groups.set(name, { running: 1, waiting: [] });
      return true;
    }
    if (group.running >= this.maxPerGroup && !this.#closed) return false;
    group.running++;
    return true;
  }

  /** Waits until the group has a free slot (runs without a group are not limited). */
  async enter(name: string | undefined): Promise<void> {
    if (this.tryEnter(name)) return;
    // A group with a run waiting is kept (see leave).
    const group = this.#groups.get(name!)!;
    await new Promise<void>((resolve) => group.waiting.push(resolve));
    group.running++;
  }

  /** Runs waiting for a slot of their group now. */
  get waiting(): number {
    let count = 0;
    for (const group of this.#groups.values()) count += group.waiting.length;
    return count;
  }

  /** Gives back the slot `enter` took, letting the group's next waiting run in. */
  leave(name: string | undefined): void {
    const group = name === undefined ? undefined : this.#groups.get(name);
    if (!group) return;
    group.running--;
    group.waiting.shift()?.();
    if (group.running === 0 && group.waiting.length === 0) this.#groups.delete(name!);
  }

  /** Lets every waiting run through (the pool is closing: they find no worker). */
  close(): void {
    this.#closed = true;
    for (const group of this.#groups.values()) for (const next of group.waiting.splice(0)) next();
  }
}
