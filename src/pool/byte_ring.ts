/**
 * A single-producer, single-consumer byte ring in a SharedArrayBuffer: how the request body
 * reaches a guest running in a worker, and how its stdout comes back, with backpressure.
 * One side of each ring blocks (the worker, inside a synchronous WASI call); the other side
 * awaits (the server's event loop, through `Atomics.waitAsync`).
 * @module
 */

/**
 * Header slots (Int32): bytes written so far, bytes read so far, the state flags, and two
 * event counters that waiters sleep on: one bumped by the producer (write, close), one by the
 * consumer (read, abandon), so that no wake-up is lost between a check and a wait.
 */
const WRITTEN = 0;
const READ = 1;
const STATE = 2;
const PRODUCED = 3;
const CONSUMED = 4;
/** Room a waiting producer needs before it is worth waking it (0: nobody waits). */
const WANTED_ROOM = 5;
const HEADER_BYTES = 32;

/** The producer finished: no more bytes will come. */
const CLOSED = 1;
/** The consumer went away: writes are dropped and the producer should stop. */
const ABANDONED = 2;
/** The run using the ring was stopped: both ends give up at once, whatever is buffered. */
const INTERRUPTED = 4;

/** The shared memory of a ring, to hand to another thread. */
export type RingBuffer = SharedArrayBuffer;

/** Makes the shared memory for a ring of `capacity` bytes (a power of two). */
export function createRing(capacity: number): RingBuffer {
  return new SharedArrayBuffer(ringBytes(capacity));
}

/** The bytes a ring of `capacity` bytes (a power of two) takes, its header included. */
export function ringBytes(capacity: number): number {
  if (capacity & (capacity - 1)) throw new Error("ring capacity must be a power of two");
  return HEADER_BYTES + capacity;
}

/** One end's view of a ring. Counters are 32-bit and wrap; differences stay exact. */
export class ByteRing {
  readonly #header: Int32Array;
  readonly #data: Uint8Array;
  readonly #mask: number;

  /** The ring in `buffer`, or in its `byteLength` bytes from `byteOffset` (a multiple of 8). */
  constructor(buffer: RingBuffer, byteOffset = 0, byteLength = buffer.byteLength - byteOffset) {
    this.#header = new Int32Array(buffer, byteOffset, HEADER_BYTES / 4);
    this.#data = new Uint8Array(buffer, byteOffset + HEADER_BYTES, byteLength - HEADER_BYTES);
    this.#mask = this.#data.length - 1;
  }

  /** Empties the ring for a new run; only when neither end is in use. */
  reset(): void {
    this.#header.fill(0);
  }

  /** Bytes waiting to be read. */
  get buffered(): number {
    return (Atomics.load(this.#header, WRITTEN) - Atomics.load(this.#header, READ)) | 0;
  }

  /** True once the producer closed the ring. */
  get closed(): boolean {
    return (Atomics.load(this.#header, STATE) & CLOSED) !== 0;
  }

  /** True once the consumer abandoned the ring (or the run was stopped). */
  get abandoned(): boolean {
    return (Atomics.load(this.#header, STATE) & (ABANDONED | INTERRUPTED)) !== 0;
  }

  /** True once the run using the ring was stopped. */
  get interrupted(): boolean {
    return (Atomics.load(this.#header, STATE) & INTERRUPTED) !== 0;
  }

  /**
   * Either side: the run is stopped. Wakes both ends wherever they wait; from now on reads
   * find the end and writes are refused.
   */
  interrupt(): void {
    Atomics.or(this.#header, STATE, INTERRUPTED);
    Atomics.add(this.#header, PRODUCED, 1);
    Atomics.notify(this.#header, PRODUCED);
    Atomics.add(this.#header, CONSUMED, 1);
    Atomics.notify(this.#header, CONSUMED);
  }

  /** Producer: no more bytes. Wakes a waiting consumer. */
  close(): void {
    Atomics.or(this.#header, STATE, CLOSED);
    this.#produced();
  }

  #produced(): void {
    Atomics.add(this.#header, PRODUCED, 1);
    Atomics.notify(this.#header, PRODUCED);
  }

  #consumed(): void {
    Atomics.add(this.#header, CONSUMED, 1);
    // A producer waits for a good amount of room, not for every byte read: waking it for
    // each small read would ping-pong between threads at the reader's pace.
    const wanted = Atomics.load(this.#header, WANTED_ROOM);
    if (wanted === 0 || this.#room() >= wanted || this.abandoned) {
      Atomics.notify(this.#header, CONSUMED);
    }
  }

  #room(): number {
    const used = (Atomics.load(this.#header, WRITTEN) - Atomics.load(this.#header, READ)) | 0;
    return this.#data.length - used;
  }

  /** Before a producer waits: how much room to be woken for. */
  #want(remaining: number): void {
    Atomics.store(this.#header, WANTED_ROOM, Math.min(remaining, this.#data.length >> 1));
  }

  /** Consumer: stop reading for good. Wakes a producer waiting for room. */
  abandon(): void {
    Atomics.or(this.#header, STATE, ABANDONED);
    this.#consumed();
  }

  /** Copies up to `length` bytes of `source` from `at` into the ring; returns how many fit. */
  #put(source: Uint8Array, at: number, length: number): number {
    const written = Atomics.load(this.#header, WRITTEN);
    const room = this.#data.length - ((written - Atomics.load(this.#header, READ)) | 0);
    const n = Math.min(room, length);
    if (n === 0) return 0;
    const start = written & this.#mask;
    const first = Math.min(n, this.#data.length - start);
    this.#data.set(source.subarray(at, at + first), start);
    if (first < n) this.#data.set(source.subarray(at + first, at + n), 0);
    Atomics.store(this.#header, WRITTEN, (written + n) | 0);
    this.#produced();
    return n;
  }

  /** Copies up to `length` buffered bytes into `target` at `at`; returns how many. */
  #take(target: Uint8Array, at: number, length: number): number {
    const read = Atomics.load(this.#header, READ);
    const n = Math.min(length, (Atomics.load(this.#header, WRITTEN) - read) | 0);
    if (n === 0) return 0;
    const start = read & this.#mask;
    const first = Math.min(n, this.#data.length - start);
    target.set(this.#data.subarray(start, start + first), at);
    if (first < n) target.set(this.#data.subarray(0, n - first), at + first);
    Atomics.store(this.#header, READ, (read + n) | 0);
    this.#consumed();
    return n;
  }

  /**
   * Producer, blocking: writes all `length` bytes, waiting for room. Returns false when the
   * consumer abandoned the ring (the rest is dropped).
   */
  writeSync(source: Uint8Array, at: number, length: number): boolean {
    let done = 0;
    while (done < length) {
      const observed = Atomics.load(this.#header, CONSUMED);
      if (this.abandoned) return false;
      const n = this.#put(source, at + done, length - done);
      done += n;
      if (n === 0) {
        this.#want(length - done);
        if (this.#room() === 0) Atomics.wait(this.#header, CONSUMED, observed);
        Atomics.store(this.#header, WANTED_ROOM, 0);
      }
    }
    return true;
  }

  /** Consumer, blocking: reads at least one byte, or returns 0 at the end (or a stop). */
  readSync(target: Uint8Array, at: number, length: number): number {
    if (length === 0) return 0;
    for (;;) {
      const observed = Atomics.load(this.#header, PRODUCED);
      if (this.interrupted) return 0;
      const n = this.#take(target, at, length);
      if (n > 0) return n;
      if (this.closed) return this.#take(target, at, length);
      Atomics.wait(this.#header, PRODUCED, observed);
    }
  }

  /** Producer, awaiting: writes all of `chunk`. Returns false if the consumer abandoned. */
  async write(chunk: Uint8Array): Promise<boolean> {
    let done = 0;
    while (done < chunk.length) {
      const observed = Atomics.load(this.#header, CONSUMED);
      if (this.abandoned) return false;
      const n = this.#put(chunk, done, chunk.length - done);
      done += n;
      if (n === 0) {
        this.#want(chunk.length - done);
        if (this.#room() === 0) {
          await Atomics.waitAsync(this.#header, CONSUMED, observed).value;
        }
        Atomics.store(this.#header, WANTED_ROOM, 0);
      }
    }
    return true;
  }

  /**
   * Consumer, awaiting: fills `target` with buffered bytes, waiting for some; returns how
   * many, 0 at the end. The caller's buffer can be reused, so streaming allocates nothing.
   */
  async readInto(target: Uint8Array): Promise<number> {
    for (;;) {
      const observed = Atomics.load(this.#header, PRODUCED);
      if (this.interrupted) return 0;
      const n = this.#take(target, 0, target.length);
      if (n > 0) return n;
      if (this.closed) return this.#take(target, 0, target.length);
      await Atomics.waitAsync(this.#header, PRODUCED, observed).value;
    }
  }
}

/** Rings no run is using, kept so that a request does not allocate and zero new ones. */
export class RingStock {
  #spare: RingBuffer[] = [];

  /** Keeps at most `keep` spare rings of `capacity` bytes each. */
  constructor(readonly capacity: number, readonly keep: number) {}

  /** An empty ring: a spare one, or a new one. */
  take(): RingBuffer {
    const ring = this.#spare.pop();
    if (!ring) return createRing(this.capacity);
    new ByteRing(ring).reset();
    return ring;
  }

  /** Takes back a ring that neither end will touch again. */
  give(ring: RingBuffer): void {
    if (this.#spare.length < this.keep) this.#spare.push(ring);
  }
}
