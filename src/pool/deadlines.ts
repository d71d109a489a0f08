/**
 * The deadlines of the pool's runs, kept with one timer for all of them: runs with the same
 * timeout end in the order they started, so each timeout keeps its deadlines in a queue of
 * buckets a few milliseconds wide, and the timer waits for the earliest. A timer per run (a
 * Node-compatible `Timeout` object in Deno) was about a tenth of what a short run in the pool
 * allocated on the server's thread.
 * @module
 */

/** How wide a bucket is: a deadline is kept at most this much late. */
const GRAIN_MS = 5;

/** Deadlines due at the same time, of runs with the same timeout. */
interface Bucket {
  at: number;
  deadlines: Set<Deadline>;
  /** The queue it is in (of its timeout). */
  queue: Bucket[];
}

/** One run's deadline, as {@link Deadlines.add} made it. */
export interface Deadline {
  readonly onExpire: () => void;
  bucket: Bucket | undefined;
}

/** Calls each deadline's `onExpire` once it is due, unless it was cancelled first. */
export class Deadlines {
  /** Bucket queues by timeout, each in deadline order. */
  #queues = new Map<number, Bucket[]>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;

  /** Calls `onExpire` in `timeoutMs` (up to {@link GRAIN_MS} later), unless cancelled. */
  add(timeoutMs: number, onExpire: () => void): Deadline {
    const at = Math.ceil((performance.now() + timeoutMs) / GRAIN_MS) * GRAIN_MS;
    let queue = this.#queues.get(timeoutMs);
    if (!queue) {
      queue = [];
      this.#queues.set(timeoutMs, queue);
    }
    let bucket = queue[queue.length - 1];
    if (bucket?.at !== at) {
      bucket = { at, deadlines: new Set(), queue };
      queue.push(bucket);
    }
    const deadline: Deadline = { onExpire, bucket };
    bucket.deadlines.add(deadline);
    if (at < this.#timerAt) this.#arm(at);
    return deadline;
  }

  /** Forgets `deadline` (its run ended first). */
  cancel(deadline: Deadline): void {
    const bucket = deadline.bucket;
    if (!bucket) return;
    deadline.bucket = undefined;
    bucket.deadlines.delete(deadline);
    // Empty buckets at the head go at once: a run that ends keeps nothing alive.
    const queue = bucket.queue;
    let empty = 0;
    while (empty < queue.length && queue[empty].deadlines.size === 0) empty++;
    if (empty > 0) queue.splice(0, empty);
  }

  /** Stops the timer (the pool closed). */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #arm(at: number): void {
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, at - performance.now()));
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = performance.now();
    const due: Deadline[] = [];
    let next = Infinity;
    for (const [timeoutMs, queue] of this.#queues) {
      let passed = 0;
      while (
        passed < queue.length && (queue[passed].at <= now || queue[passed].deadlines.size === 0)
      ) {
        for (const deadline of queue[passed].deadlines) due.push(deadline);
        passed++;
      }
      queue.splice(0, passed);
      if (queue.length === 0) this.#queues.delete(timeoutMs);
      else next = Math.min(next, queue[0].at);
    }
    if (next < Infinity) this.#arm(next);
    for (const deadline of due) {
      deadline.bucket = undefined;
      deadline.onExpire();
    }
  }
}
