/**
 * How the pool's thread learns that workers moved the queue's slots on (a run streams, a run
 * ended, a worker retired) without a wake-up per change: every worker bumps one shared counter,
 * and wakes the pool only if it is asleep waiting on it; once awake, the pool looks at every
 * slot (and condition) it waits for.
 * Waking a thread through its event loop costs the waker tens of microseconds, more under load;
 * under load most changes now find the pool awake, and cost no wake-up at all.
 * @module
 */

import type { Mailbox } from "./mailbox.ts";

/** Changes signalled so far. */
const COUNT = 0;
/** 1 while the pool's thread waits on the counter: only then is it woken. */
const WAITING = 1;

/** Something waiting for a change: settled once `check` says so. */
interface Watch {
  /** The state it waited for, or undefined while it has not come. */
  check(): number | undefined;
  resolve: (state: number) => void;
}

/** What {@link Completions.watch} resolves with when the watcher gave up waiting. */
export const GAVE_UP = -1;

/** A run waiting for its slot's mailbox to leave a state (or to give up waiting). */
class SlotWatch implements Watch {
  constructor(
    readonly mailbox: Mailbox,
    readonly from: number,
    readonly waiter: { readonly gaveUp: boolean } | undefined,
    readonly resolve: (state: number) => void,
  ) {}

  check(): number | undefined {
    const state = this.mailbox.state;
    return state !== this.from ? state : this.waiter?.gaveUp ? GAVE_UP : undefined;
  }
}

/** The shared counter, seen from a worker. */
export class CompletionSignal {
  readonly #words: Int32Array;

  constructor(buffer: SharedArrayBuffer) {
    this.#words = new Int32Array(buffer);
  }

  /** Worker: its mailbox changed state. */
  signal(): void {
    const words = this.#words;
    Atomics.add(words, COUNT, 1);
    // Read after the bump: either the pool sees the bump before it sleeps, or this sees it
    // asleep.
    if (Atomics.load(words, WAITING) === 1) Atomics.notify(words, COUNT);
  }
}

/** The shared counter, seen from the pool: the mailboxes its runs wait on. */
export class Completions {
  readonly buffer = new SharedArrayBuffer(8);
  readonly #words = new Int32Array(this.buffer);
  #watches: Watch[] = [];
  #looping = false;

  /** Pool: a mailbox changed state on this thread (a failed worker's run was answered). */
  changed(): void {
    Atomics.add(this.#words, COUNT, 1);
    Atomics.notify(this.#words, COUNT);
  }

  /**
   * Resolves with the mailbox's new state once it is no longer `from`, or with
   * {@link GAVE_UP} once `waiter` gave up first (checked at each change signalled).
   */
  watch(mailbox: Mailbox, from: number, waiter?: { readonly gaveUp: boolean }): Promise<number> {
    const now = mailbox.state;
    if (now !== from) return Promise.resolve(now);
    return new Promise((resolve) => this.#addWatch(new SlotWatch(mailbox, from, waiter, resolve)));
  }

  /** Resolves once `condition` holds (checked at each change a worker signals). */
  async until(condition: () => boolean): Promise<void> {
    if (condition()) return;
    await this.#add(() => (condition() ? 1 : undefined));
  }

  #add(check: () => number | undefined): Promise<number> {
    return new Promise((resolve) => this.#addWatch({ check, resolve }));
  }

  #addWatch(watch: Watch): void {
    this.#watches.push(watch);
    if (!this.#looping) this.#loop();
  }

  /** Looks at the mailboxes watched each time workers signal, while any is watched. */
  async #loop(): Promise<void> {
    this.#looping = true;
    const words = this.#words;
    try {
      while (this.#watches.length > 0) {
        const seen = Atomics.load(words, COUNT);
        this.#settle();
        if (this.#watches.length === 0) break;
        Atomics.store(words, WAITING, 1);
        // A signal between the look above and here changed the count: the wait returns at once.
        const wait = Atomics.waitAsync(words, COUNT, seen);
        if (wait.async) await wait.value;
        Atomics.store(words, WAITING, 0);
      }
    } finally {
      this.#looping = false;
    }
  }

  /** Resolves the watches whose change came. */
  #settle(): void {
    const watches = this.#watches;
    let kept = 0;
    for (const watch of watches) {
      const state = watch.check();
      if (state !== undefined) watch.resolve(state);
      else watches[kept++] = watch;
    }
    watches.length = kept;
  }
}
