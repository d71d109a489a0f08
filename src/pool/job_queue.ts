/**
 * The pool's shared job queue: runs posted by the server's thread into slots, each taken by
 * whichever worker is free first, so that a worker finishing a job takes the next one without
 * waiting for the server's thread to hand it over (a hand-off per job used to cost both threads
 * a wake-up). A slot is a {@link Mailbox} (the job in, the answer out) with a stdout ring of its
 * own for output that streams; its ticket word says whether it is free (0), posted (> 0, lower
 * tickets first) or taken (minus the id of the worker that took it), so that a run stopped before
 * any worker took it is withdrawn with one compare-and-swap, and a run already taken names the
 * worker to stop.
 * @module
 */

import { Mailbox, MAILBOX_BYTES, type MailedJob, STOP_WORD_AT } from "./mailbox.ts";
import { RunControl } from "./control.ts";
import { ByteRing, ringBytes } from "./byte_ring.ts";

/** Header words (Int32); the tickets follow. */
const EVENTS = 0;
const SLEEPERS = 1;
const TICKETS = 4;

/** Size of each slot's stdout ring (a power of two). */
const SLOT_RING_BYTES = 64 * 1024;

/** Bytes a slot takes: its mailbox, then its ring. */
const SLOT_BYTES = MAILBOX_BYTES + ringBytes(SLOT_RING_BYTES);

/**
 * What a worker is sent to see the queue the pool made: its header, and every slot in one
 * buffer (one large allocation is mapped lazily; one per slot cost ~0.3 ms each at start).
 */
export interface QueueBuffers {
  header: SharedArrayBuffer;
  slots: SharedArrayBuffer;
}

/** The queue, seen from either thread. */
export class JobQueue {
  readonly #words: Int32Array;
  /** How many slots it has. */
  readonly slots: number;
  readonly #mailboxes: Mailbox[];
  readonly #rings: ByteRing[];
  readonly #controls: RunControl[];
  #nextTicket = 1;

  constructor(readonly buffers: QueueBuffers) {
    this.#words = new Int32Array(buffers.header);
    this.slots = buffers.slots.byteLength / SLOT_BYTES;
    // Views made as slots are first used: a start makes the queue, and most slots wait.
    this.#mailboxes = new Array(this.slots);
    this.#rings = new Array(this.slots);
    this.#controls = new Array(this.slots);
  }

  /** Pool: a queue of `slots` slots. */
  static create(slots: number): JobQueue {
    return new JobQueue({
      header: new SharedArrayBuffer((TICKETS + slots) * 4),
      slots: new SharedArrayBuffer(slots * SLOT_BYTES),
    });
  }

  /** Slot `slot`'s mailbox. */
  mailbox(slot: number): Mailbox {
    return this.#mailboxes[slot] ??= new Mailbox(this.buffers.slots, slot * SLOT_BYTES);
  }

  /** Slot `slot`'s control block: how the run in it is stopped. */
  control(slot: number): RunControl {
    return this.#controls[slot] ??= new RunControl(
      this.buffers.slots,
      slot * SLOT_BYTES + STOP_WORD_AT,
    );
  }

  /** Slot `slot`'s stdout ring. */
  ring(slot: number): ByteRing {
    return this.#rings[slot] ??= new ByteRing(
      this.buffers.slots,
      slot * SLOT_BYTES + MAILBOX_BYTES,
      ringBytes(SLOT_RING_BYTES),
    );
  }

  /**
   * Pool: posts a job into free slot `slot`, waking `wake` sleeping workers (0: the workers
   * awake take it when done with theirs); false when the job does not fit (it then goes as a
   * message, and the slot stays free).
   */
  post(
    slot: number,
    runId: number,
    moduleId: number,
    job: MailedJob,
    stdin: Uint8Array | null,
    wake: number,
  ): boolean {
    if (!this.mailbox(slot).post(runId, moduleId, job, stdin)) return false;
    // A stop of the slot's previous run, if one came late, is not this one's.
    this.control(slot).clear();
    const ticket = this.#nextTicket;
    // Positive, and lowest first but for one wrap every 2^30 jobs.
    this.#nextTicket = ticket >= 0x3fffffff ? 1 : ticket + 1;
    Atomics.store(this.#words, TICKETS + slot, ticket);
    // Counted even when nobody is woken: a worker about to sleep sees it and does not.
    this.#event(wake);
    return true;
  }

  /** Pool: wakes `count` sleeping workers (jobs waited for the ones awake too long). */
  wake(count: number): void {
    this.#event(count);
  }

  /**
   * Pool: withdraws the job in `slot` unless a worker took it: 0 when withdrawn (no guest will
   * ever run it), else the id of the worker that took it.
   */
  withdraw(slot: number): number {
    const words = this.#words;
    for (;;) {
      const ticket = Atomics.load(words, TICKETS + slot);
      if (ticket <= 0) return -ticket;
      if (Atomics.compareExchange(words, TICKETS + slot, ticket, 0) === ticket) return 0;
    }
  }

  /** The id of the worker that took the job in `slot` (0: none did). */
  takerOf(slot: number): number {
    const ticket = Atomics.load(this.#words, TICKETS + slot);
    return ticket < 0 ? -ticket : 0;
  }

  /** Pool: `slot`'s run is over and its answer read: it may be posted to again. */
  free(slot: number): void {
    this.mailbox(slot).clear();
    Atomics.store(this.#words, TICKETS + slot, 0);
  }

  /** Whether `slot` holds a job posted and not taken yet. */
  isPosted(slot: number): boolean {
    return Atomics.load(this.#words, TICKETS + slot) > 0;
  }

  /** Jobs posted and not taken yet. */
  get posted(): number {
    let count = 0;
    for (let slot = 0; slot < this.slots; slot++) {
      if (Atomics.load(this.#words, TICKETS + slot) > 0) count++;
    }
    return count;
  }

  /** Workers asleep waiting for jobs. */
  get sleepers(): number {
    return Atomics.load(this.#words, SLEEPERS);
  }

  /**
   * Pool: wakes every sleeping worker (one was sent a message, is closing or retiring: it reads
   * those only when awake).
   */
  wakeAll(): void {
    this.#event(Infinity);
  }

  #event(count: number): void {
    const words = this.#words;
    Atomics.add(words, EVENTS, 1);
    // A wake-up costs the waker ~10 µs: workers that are awake need none.
    if (count > 0 && Atomics.load(words, SLEEPERS) > 0) Atomics.notify(words, EVENTS, count);
  }

  /** Worker: events so far (see {@link JobQueue.sleep}). */
  get events(): number {
    return Atomics.load(this.#words, EVENTS);
  }

  /**
   * Worker `workerId`: takes the posted job with the lowest ticket; the slot, or -1 when none
   * is posted.
   */
  take(workerId: number): number {
    const words = this.#words;
    for (;;) {
      let best = -1;
      let lowest = Infinity;
      for (let slot = 0; slot < this.slots; slot++) {
        const ticket = Atomics.load(words, TICKETS + slot);
        if (ticket > 0 && ticket < lowest) {
          lowest = ticket;
          best = slot;
        }
      }
      if (best === -1) return -1;
      if (Atomics.compareExchange(words, TICKETS + best, lowest, -workerId) === lowest) {
        return best;
      }
    }
  }

  /**
   * Worker: blocks until there were more than `seen` events, or for `timeoutMs` (then returns
   * false). Blocking, not awaiting: a thread woken through its event loop takes far longer, and
   * with several workers the difference grows (measured: 35k against 7k hand-offs a second with
   * eight workers).
   */
  sleep(seen: number, timeoutMs: number): boolean {
    const words = this.#words;
    Atomics.add(words, SLEEPERS, 1);
    // Waits only if no event came since `seen`; the pool, seeing a sleeper, wakes one.
    const woke = Atomics.wait(words, EVENTS, seen, timeoutMs);
    Atomics.sub(words, SLEEPERS, 1);
    return woke !== "timed-out";
  }

  /**
   * Worker: it may have been woken for a job, and leaves for its event loop (messages to read,
   * closing, retired): another sleeper takes the jobs left.
   */
  passOn(): void {
    if (this.posted > 0 && this.sleepers > 0) Atomics.notify(this.#words, EVENTS, 1);
  }
}
