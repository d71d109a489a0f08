/**
 * What the pool and one worker share besides runs: whether the worker has loaded, how many
 * messages wait for it (a worker waiting for jobs sleeps in `Atomics.wait` and reads messages
 * only when told there are some), whether it is closing or retiring, and whether it is running
 * a job from the shared queue or is reserved for a run that comes as a message. The status word
 * is changed only by compare-and-swap, so that the pool never reserves a worker that has just
 * taken a job, and a worker never takes a job once reserved.
 * @module
 */

/** Header words (Int32). */
const READY = 0;
const MESSAGES = 1;
const CLOSING = 2;
const STATUS = 3;
const RETIRE = 4;
const WORDS = 5;

/** Neither running a job from the queue nor reserved. */
export const FREE = 0;
/** Running a job it took from the queue. */
export const BUSY = 1;
/** Reserved by the pool for a run sent as a message. */
export const RESERVED = 2;
/** Done: it takes nothing more and may be terminated. */
export const RETIRED = 3;

/** One worker's block, seen from either thread. */
export class WorkerBlock {
  readonly #words: Int32Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(WORDS * 4)) {
    this.#words = new Int32Array(buffer);
  }

  /** {@link FREE}, {@link BUSY}, {@link RESERVED} or {@link RETIRED}. */
  get status(): number {
    return Atomics.load(this.#words, STATUS);
  }

  /** Pool: reserves the worker for a message run; false when it is not free. */
  reserve(): boolean {
    return Atomics.compareExchange(this.#words, STATUS, FREE, RESERVED) === FREE;
  }

  /** Pool: ends a reservation (the run ended, or was never sent). */
  unreserve(): void {
    Atomics.compareExchange(this.#words, STATUS, RESERVED, FREE);
  }

  /** Pool: a message was sent to the worker (see {@link WorkerBlock.messages}). */
  sent(): void {
    Atomics.add(this.#words, MESSAGES, 1);
  }

  /** Pool: the worker is about to be terminated: it must not sleep again. */
  close(): void {
    Atomics.store(this.#words, CLOSING, 1);
  }

  /** Pool: the worker is to take no more jobs, then say it retired. */
  retire(): void {
    Atomics.store(this.#words, RETIRE, 1);
  }

  /** Worker: says it has loaded (see {@link WorkerBlock.loaded}). */
  ready(): void {
    Atomics.store(this.#words, READY, 1);
    Atomics.notify(this.#words, READY);
  }

  /** Pool: resolves once the worker has loaded its code and serves the queue. */
  async loaded(): Promise<void> {
    const wait = Atomics.waitAsync(this.#words, READY, 0);
    if (wait.async) await wait.value;
  }

  /** Worker: messages the pool has sent so far. */
  get messages(): number {
    return Atomics.load(this.#words, MESSAGES);
  }

  /** Worker: true once the pool closed the block. */
  get closing(): boolean {
    return Atomics.load(this.#words, CLOSING) === 1;
  }

  /** Worker: true once the pool asked it to retire. */
  get retiring(): boolean {
    return Atomics.load(this.#words, RETIRE) === 1;
  }

  /** Worker: marks it running a job from the queue; false when it is reserved (or retired). */
  startJob(): boolean {
    return Atomics.compareExchange(this.#words, STATUS, FREE, BUSY) === FREE;
  }

  /** Worker: the job from the queue ended. */
  endJob(): void {
    Atomics.compareExchange(this.#words, STATUS, BUSY, FREE);
  }

  /** Worker: it takes nothing more (when free: a reserved worker first ends its run). */
  markRetired(): boolean {
    return Atomics.compareExchange(this.#words, STATUS, FREE, RETIRED) === FREE;
  }
}
