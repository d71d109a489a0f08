/**
 * The pool's worker threads: started up front or on demand up to a maximum, handed to one
 * run at a time, replaced when their guest grew large, and stopped once surplus and idle. A
 * worker is only ever terminated while it is idle, except one whose stopped guest does not
 * unwind (a host call that cannot be woken): that one is given up ("lost"), and said so.
 * @module
 */

import { RunControl } from "./control.ts";
import { Mailbox } from "./mailbox.ts";
import type { PoolMessage } from "./protocol.ts";
import { Completions } from "./completions.ts";
import { ByteRing, createRing } from "./byte_ring.ts";
import { roomForThread } from "../open_files.ts";

/** The worker script; a bundle of the server (dist/, see deno.json) has its own beside it. */
const GUEST_WORKER_URL = import.meta.url.endsWith(".js")
  ? new URL("./guest_worker.js", import.meta.url).href
  : new URL("./guest_worker.ts", import.meta.url).href;

/** Size of a worker's own stdout ring (a power of two). */
const WORKER_RING_BYTES = 64 * 1024;

/** How often a worker that could not be started (no descriptors to spare) is tried again. */
const ROOM_RETRY_MS = 250;

/**
 * A worker still loading after this long no longer keeps the next from starting (workers
 * start one at a time, see {@link Workers.acquire}): one that hangs must not stall the pool.
 */
const SLOW_LOAD_MS = 5_000;

/** Default for how long a worker beyond the warm ones may sit idle before it is stopped. */
const IDLE_WORKER_MS = 30_000;

/**
 * A worker whose guests have used this much linear memory in total is replaced. Dead guest
 * instances are only freed when the worker's heap is collected, which V8 does rarely for a
 * heap of small objects; replacing the worker hands the memory back at once.
 */
const REPLACE_AFTER_BYTES = 256 * 1024 * 1024;

/** A worker thread and what it holds. */
export interface PoolWorker {
  worker: Worker;
  /** How its runs are stopped. */
  control: RunControl;
  /** Where it is handed runs without a message (see mailbox.ts). */
  mailbox: Mailbox;
  /** Its own stdout ring, for the output of mailbox runs that stream. */
  ring: ByteRing;
  /** Modules this worker already holds, by id. */
  modules: Set<number>;
  /** When it last went idle (performance.now()). */
  idleSince: number;
  /** Linear memory its guests have used so far, added up. */
  usedBytes: number;
  /** It failed by itself (its script did not load, say): it never serves again. */
  failed?: boolean;
  /** Its code is still loading. */
  starting: boolean;
}

/** How many workers, and when one is replaced or stopped. */
export interface WorkerOptions {
  /** Workers started up front and kept idle. */
  warm: number;
  /**
   * Start the warm workers only once a run first needs one, not when the pool is made: starting
   * a worker holds the calling thread for tens of milliseconds, and so does a process's first
   * timer, which a server's first requests should not wait behind when they do not need the
   * pool.
   */
  lazy?: boolean;
  /** Most workers at once; more runs wait for one. */
  max: number;
  /** A worker whose guest ended with more memory than this is replaced. */
  replaceAboveBytes: number;
  /** Workers beyond the warm ones idle this long are stopped (default 30 s). */
  idleWorkerMs?: number;
  /** Told when a worker is given up (see {@link Workers.giveUp}). */
  onLost?: (message: string) => void;
  /** Told when a worker could not be started for want of descriptors (once until one starts). */
  onNoRoom?: (message: string) => void;
}

/**
 * Sends `message` to `worker` (never the first, control message): a worker asleep waiting for
 * jobs reads its messages only once told there are some (see Mailbox.sent).
 */
export function sendTo(worker: PoolWorker, message: PoolMessage): void {
  worker.worker.postMessage(message);
  worker.mailbox.sent();
}

/** The worker threads of a pool. */
export class Workers {
  #idle: PoolWorker[] = [];
  /** Every worker alive, busy or idle. */
  #alive = new Set<PoolWorker>();
  /** Runs waiting for a worker; `undefined` tells them the pool closed. */
  #waiting: ((worker: PoolWorker | undefined) => void)[] = [];
  #closed = false;
  #trimTimer: number | undefined;
  #warmed = false;
  #idleMs: number;
  #lost = 0;
  #nextRunId = 1;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #saidNoRoom = false;
  /** Workers whose code is still loading (see {@link Workers.acquire}). */
  #starting = 0;
  /** How runs learn that their worker's mailbox changed. */
  readonly completions = new Completions();

  constructor(readonly options: WorkerOptions) {
    this.#idleMs = options.idleWorkerMs ?? IDLE_WORKER_MS;
    if (!options.lazy) this.#warmUp();
  }

  /** Workers alive now, busy or idle. */
  get count(): number {
    return this.#alive.size;
  }

  /**
   * Every worker lets go of the modules `moduleIds` (no longer served); a run that needs one
   * again sends it again. A worker running one now keeps it until that run ends.
   */
  forget(moduleIds: readonly number[]): void {
    if (moduleIds.length === 0) return;
    for (const worker of this.#alive) {
      const held = moduleIds.filter((id) => worker.modules.delete(id));
      if (held.length === 0) continue;
      sendTo(worker, { type: "forget", moduleIds: held });
    }
  }

  /** Runs waiting for a worker now (all `max` are busy). */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Workers given up so far, because their stopped guest would not unwind. */
  get lost(): number {
    return this.#lost;
  }

  /** A new run id, unique in this pool: stops name the run they are for. */
  nextRunId(): number {
    return this.#nextRunId++;
  }

  /** Starts workers until `warm` of them are alive, and the timer that stops surplus ones. */
  #warmUp(): void {
    this.#warmed = true;
    // Each joins the idle ones (or takes a waiting run) once it has loaded.
    while (!this.#closed && this.#alive.size < this.options.warm) {
      if (!this.#spawn()) break;
    }
    // A burst may have started up to `max` workers: the extra ones go once they sit idle.
    // Deno timers are numbers (the type says Timeout when Node types are loaded).
    this.#trimTimer ??= setInterval(() => this.#trimIdle(), this.#idleMs / 2) as unknown as number;
    Deno.unrefTimer(this.#trimTimer);
  }

  #trimIdle(): void {
    const now = performance.now();
    // Idle workers are taken from the end, so the longest idle ones are at the front.
    while (
      this.#idle.length > this.options.warm && now - this.#idle[0].idleSince > this.#idleMs
    ) {
      this.#stop(this.#idle.shift()!);
    }
  }

  /** A new worker, or none while the process has no descriptors to spare for its thread. */
  #spawn(): PoolWorker | undefined {
    if (!roomForThread()) {
      if (!this.#saidNoRoom) {
        this.#saidNoRoom = true;
        this.options.onNoRoom?.(
          "a pool worker was not started: the process has almost no descriptors left; runs " +
            "wait for a busy worker, and a worker starts once descriptors are free again",
        );
      }
      return undefined;
    }
    this.#saidNoRoom = false;
    const worker = new Worker(GUEST_WORKER_URL, { type: "module" });
    const control = RunControl.create();
    const mailbox = new Mailbox();
    const ring = createRing(WORKER_RING_BYTES);
    worker.postMessage({
      type: "control",
      buffer: control.buffer,
      mailbox: mailbox.buffer,
      ring,
      completions: this.completions.buffer,
    });
    const spawned: PoolWorker = {
      worker,
      control,
      mailbox,
      ring: new ByteRing(ring),
      modules: new Set<number>(),
      idleSince: performance.now(),
      usedBytes: 0,
      starting: true,
    };
    this.#starting++;
    const slow = setTimeout(() => this.#started(spawned), SLOW_LOAD_MS);
    Deno.unrefTimer(slow);
    mailbox.loaded().then(() => {
      clearTimeout(slow);
      this.#started(spawned);
      // Only a loaded worker is handed out: a run given one still loading would wait for
      // all of its loading, where another worker may free up much sooner (a worker started
      // by a server isolate that is itself a worker takes about a second to load).
      if (this.#alive.has(spawned) && !spawned.failed) this.#handOver(spawned);
    });
    // A worker that fails by itself (its script could not be loaded: no descriptor left, say)
    // is dropped; a run that has it is told by its own handler, and gives it back failed.
    worker.addEventListener("error", (event) => {
      event.preventDefault();
      spawned.failed = true;
      this.#started(spawned);
      // A run in its mailbox is answered from here: the worker never will.
      mailbox.fail(event.message);
      this.completions.changed();
      const at = this.#idle.indexOf(spawned);
      if (at === -1) return;
      this.#idle.splice(at, 1);
      this.#stop(spawned);
    });
    this.#alive.add(spawned);
    return spawned;
  }

  /**
   * `worker` has loaded its code, failed, been stopped or taken too long: another may start
   * now, for the runs waiting for one.
   */
  #started(worker: PoolWorker): void {
    if (!worker.starting) return;
    worker.starting = false;
    this.#starting--;
    this.#startMore();
  }

  /** Starts a worker for the runs waiting, if there is room for one and none is loading. */
  #startMore(): void {
    if (
      this.#closed || this.#waiting.length === 0 || this.#alive.size >= this.options.max ||
      this.#starting > 0
    ) return;
    if (!this.#spawn()) this.#retryLater();
  }

  #stop(worker: PoolWorker): void {
    this.#started(worker);
    worker.mailbox.close();
    worker.worker.terminate();
    this.#alive.delete(worker);
  }

  /** An idle worker, a new one, or (at the maximum) the next one released; none once closed. */
  async acquire(): Promise<PoolWorker | undefined> {
    if (this.#closed) return undefined;
    if (!this.#warmed) {
      // The first run that needs the pool: this one starts its worker, the rest follow after.
      this.#warmed = true;
      queueMicrotask(() => this.#warmUp());
    }
    const idle = this.#idle.pop();
    if (idle) return idle;
    // One worker loads at a time: a burst of runs on a cold pool would otherwise start every
    // worker at once, holding this thread (starting a worker does) and the cores (each loads
    // and compiles its code) for most of a second. Runs wait for a worker that frees up or
    // the next that loads, whichever comes first.
    const waited = new Promise<PoolWorker | undefined>((resolve) => this.#waiting.push(resolve));
    if (this.#alive.size < this.options.max && this.#starting === 0 && !this.#spawn()) {
      this.#retryLater();
    }
    return await waited;
  }

  /** Tries again to start workers for the runs waiting, until they have one. */
  #retryLater(): void {
    this.#retry ??= setTimeout(() => {
      this.#retry = undefined;
      this.#startMore();
    }, ROOM_RETRY_MS);
  }

  /**
   * Takes a worker back after its run, whose guest ended with `memoryBytes` of memory: it
   * serves the next run unless its guests have used too much memory.
   */
  release(worker: PoolWorker, memoryBytes: number): void {
    if (worker.failed) return this.replace(worker);
    worker.usedBytes += memoryBytes;
    const keep = memoryBytes <= this.options.replaceAboveBytes &&
      worker.usedBytes <= REPLACE_AFTER_BYTES;
    if (keep) this.#handOver(worker);
    else this.replace(worker);
  }

  /**
   * Gives up a worker whose stopped guest did not unwind in time: it is terminated, counted
   * and reported, and another takes its place.
   */
  giveUp(worker: PoolWorker, why: string): void {
    this.#lost++;
    this.options.onLost?.(
      `a pool worker was given up (${this.#lost} so far): ${why}; a new one takes its place`,
    );
    this.replace(worker);
  }

  /** Stops `worker` (idle, its guest done) and starts another if one is wanted. */
  replace(worker: PoolWorker): void {
    this.#stop(worker);
    if (this.#closed) return;
    // The new one joins the idle ones, or takes a waiting run, once it has loaded.
    const wanted = this.#waiting.length > 0 || this.#idle.length < this.options.warm;
    if (wanted && !this.#spawn() && this.#waiting.length > 0) this.#retryLater();
  }

  #handOver(worker: PoolWorker): void {
    const next = this.#waiting.shift();
    if (next) next(worker);
    else if (this.#closed) this.#stop(worker);
    else {
      worker.idleSince = performance.now();
      this.#idle.push(worker);
    }
  }

  /** Stops the idle workers; busy ones stop when released. Runs still waiting get none. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#trimTimer);
    clearTimeout(this.#retry);
    for (const waiter of this.#waiting.splice(0)) waiter(undefined);
    for (const worker of this.#idle) this.#stop(worker);
    this.#idle = [];
  }
}
