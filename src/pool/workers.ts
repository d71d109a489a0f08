/**
 * The pool's worker threads and the job queue they serve: workers start up front or on demand
 * up to a maximum, take jobs from the queue (see job_queue.ts) or are reserved for one run sent
 * as a message, are replaced when their guests used much memory, and stop once surplus and
 * idle. A worker is only ever terminated while it runs nothing (reserved by the pool, or
 * retired), except one whose stopped guest does not unwind (a host call that cannot be woken):
 * that one is given up ("lost"), and said so.
 * @module
 */

import { RunControl } from "./control.ts";
import type { MailedJob } from "./mailbox.ts";
import type { ModuleMessage, PoolMessage } from "./protocol.ts";
import { Completions } from "./completions.ts";
import { JobQueue } from "./job_queue.ts";
import { RETIRED, WorkerBlock } from "./worker_block.ts";
import { reuseInfo } from "../run/module_info.ts";
import { componentParts } from "../run/module_component.ts";
import { roomForThread } from "../open_files.ts";

/** The worker script; a bundle of the server (dist/, see deno.json) has its own beside it. */
const GUEST_WORKER_URL = import.meta.url.endsWith(".js")
  ? new URL("./guest_worker.js", import.meta.url).href
  : new URL("./guest_worker.ts", import.meta.url).href;

/** How often a worker that could not be started (no descriptors to spare) is tried again. */
const ROOM_RETRY_MS = 250;

/**
 * A worker still loading after this long no longer keeps the next from starting (workers
 * start one at a time, see {@link Workers.acquire}): one that hangs must not stall the pool.
 */
const SLOW_LOAD_MS = 5_000;

/**
 * A job left in the queue this long with no worker taking it wakes the sleeping workers, or
 * when none sleeps makes another start (up to the maximum): the workers awake are held by
 * guests that wait or run long. Jobs that only wait behind short ones wake or start none: a
 * wake-up costs the server's thread ~10 µs, and more threads than cores slow them down.
 */
const GROW_AFTER_MS = 5;

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
  /** Its id in the queue (a slot it took holds minus this). */
  id: number;
  worker: Worker;
  /** How its runs that come as messages are stopped (queued ones: by their slot's). */
  control: RunControl;
  /** What it shares with the pool (see worker_block.ts). */
  block: WorkerBlock;
  /** Modules this worker was sent, by id. */
  modules: Set<number>;
  /** When its last run ended (performance.now()). */
  lastUsed: number;
  /** Linear memory its guests have used so far, added up. */
  usedBytes: number;
  /** It failed by itself (its script did not load, say): it never serves again. */
  failed?: boolean;
  /** Its code is still loading. */
  starting: boolean;
  /** The pool reserved it for a run sent as a message. */
  reserved: boolean;
  /** It is replaced once its reserved run is over. */
  retireAfterRun?: boolean;
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

/** The worker threads of a pool, and their job queue. */
export class Workers {
  /** How runs learn that their slot changed. */
  readonly completions = new Completions();
  /** Where runs without a body to stream are posted, for any worker to take. */
  readonly queue: JobQueue;
  /** Every worker alive, by id. */
  #alive = new Map<number, PoolWorker>();
  #nextWorkerId = 1;
  /** Runs waiting to reserve a worker; `undefined` tells them the pool closed. */
  #waiting: ((worker: PoolWorker | undefined) => void)[] = [];
  /** Slots no run uses, and runs waiting for one. */
  #freeSlots: number[];
  #slotWaiting: ((slot: number | undefined) => void)[] = [];
  /** Modules every worker holds (sent to each), by id. */
  #announced = new Map<number, ModuleMessage>();
  /** Runs of each module posted to the queue and not over yet, by module id. */
  #queuedRuns = new Map<number, number>();
  /** Modules to forget once their queued runs are over. */
  #forgetLater = new Set<number>();
  /** Workers reserved now. */
  #reserved = 0;
  /** Slots never used again: their worker was given up during their run. */
  #lostSlots = 0;
  /** Whether a change workers signal serves the runs waiting (see {@link Workers.acquire}). */
  #watching = false;
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
  /** When each slot's job was posted (performance.now()). */
  #postedAt: Float64Array;
  /** Looks again whether queued jobs wait too long (see {@link GROW_AFTER_MS}). */
  #checkTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly options: WorkerOptions) {
    this.#idleMs = options.idleWorkerMs ?? IDLE_WORKER_MS;
    // Jobs beyond the workers wait in the queue: room for a second round of them.
    this.queue = JobQueue.create(Math.max(16, 2 * options.max));
    this.#freeSlots = Array.from({ length: this.queue.slots }, (_, i) => this.queue.slots - 1 - i);
    this.#postedAt = new Float64Array(this.queue.slots);
    if (!options.lazy) this.#warmUp();
  }

  /** Workers alive now, busy or idle. */
  get count(): number {
    return this.#alive.size;
  }

  /** Runs waiting now: for a worker of their own, for a slot, or in the queue. */
  get waiting(): number {
    return this.#waiting.length + this.#slotWaiting.length + this.queue.posted;
  }

  /** Workers started so far, replacements included. */
  get started(): number {
    return this.#nextWorkerId - 1;
  }

  /** Workers given up so far, because their stopped guest would not unwind. */
  get lost(): number {
    return this.#lost;
  }

  /** A new run id, unique in this pool: stops name the run they are for. */
  nextRunId(): number {
    return this.#nextRunId++;
  }

  /** The worker with id `id`, while it is alive. */
  byId(id: number): PoolWorker | undefined {
    return this.#alive.get(id);
  }

  /**
   * Sends `message` to `worker` (never the first, control message): a worker asleep waiting for
   * jobs reads its messages only once told there are some.
   */
  send(worker: PoolWorker, message: PoolMessage): void {
    worker.worker.postMessage(message);
    worker.block.sent();
    this.queue.wakeAll();
  }

  /** Every worker holds `module` (id `moduleId`) from now on: its runs may be queued. */
  announce(moduleId: number, module: WebAssembly.Module): void {
    this.#forgetLater.delete(moduleId);
    if (this.#announced.has(moduleId)) return;
    const message: ModuleMessage = {
      type: "module",
      moduleId,
      module,
      reuse: reuseInfo(module),
      component: componentParts(module),
    };
    this.#announced.set(moduleId, message);
    for (const worker of this.#alive.values()) {
      if (worker.failed || worker.modules.has(moduleId)) continue;
      worker.modules.add(moduleId);
      this.send(worker, message);
    }
  }

  /**
   * Every worker lets go of the modules `moduleIds` (no longer served), once their queued runs
   * are over; a run that needs one again sends it again. A worker running one now keeps it
   * until that run ends.
   */
  forget(moduleIds: readonly number[]): void {
    for (const id of moduleIds) {
      if (this.#queuedRuns.get(id)) this.#forgetLater.add(id);
      else this.#forgetNow([id]);
    }
  }

  #forgetNow(moduleIds: readonly number[]): void {
    for (const id of moduleIds) this.#announced.delete(id);
    for (const worker of this.#alive.values()) {
      const held = moduleIds.filter((id) => worker.modules.delete(id));
      if (held.length === 0 || worker.failed) continue;
      this.send(worker, { type: "forget", moduleIds: held });
    }
  }

  /**
   * A free slot of the queue, once there is one; undefined once the pool closed. While runs
   * wait for a worker of their own, new ones wait here too: the jobs queued drain, and the next
   * worker to be free is theirs.
   */
  async slot(): Promise<number | undefined> {
    if (this.#closed) return undefined;
    return this.trySlot() ?? await new Promise((resolve) => this.#slotWaiting.push(resolve));
  }

  /** A free slot now, if there is one (see {@link Workers.slot}). */
  trySlot(): number | undefined {
    if (this.#closed) return undefined;
    this.#ensureWarm();
    return this.#waiting.length === 0 ? this.#freeSlots.pop() : undefined;
  }

  /**
   * Posts a job into `slot` (see {@link JobQueue.post}); false when it does not fit, and the
   * slot is given back.
   */
  post(
    slot: number,
    runId: number,
    moduleId: number,
    job: MailedJob,
    stdin: Uint8Array | null,
  ): boolean {
    const queue = this.queue;
    // A sleeping worker is woken only when the workers awake are fewer than the jobs waiting
    // (each of them takes one when done with its own): under load most jobs cost no wake-up.
    // While some are reserved, every sleeper is woken: the one woken might not take it.
    const sleepers = queue.sleepers;
    const awake = this.#alive.size - this.#starting - this.#reserved - sleepers;
    const wake = sleepers === 0
      ? 0
      : this.#reserved > 0
      ? Infinity
      : queue.posted + 1 > awake
      ? 1
      : 0;
    if (!queue.post(slot, runId, moduleId, job, stdin, wake)) {
      this.#giveSlot(slot);
      return false;
    }
    this.#queuedRuns.set(moduleId, (this.#queuedRuns.get(moduleId) ?? 0) + 1);
    this.#postedAt[slot] = performance.now();
    // Left to the workers awake, or to none: if it waits long, a sleeper is woken, or another
    // worker starts.
    if (wake === 0) this.#armCheck();
    return true;
  }

  #armCheck(): void {
    if (this.#checkTimer !== undefined) return;
    this.#checkTimer = setTimeout(() => {
      this.#checkTimer = undefined;
      if (!this.#queueStuck()) return;
      // The sleepers first; a job that still waits after that (they are reserved, say) makes
      // another worker start.
      if (this.queue.sleepers > 0) this.queue.wake(Infinity);
      if (this.queue.sleepers === 0 || this.#queueStuck(2 * GROW_AFTER_MS)) this.#startMore();
      this.#armCheck();
    }, GROW_AFTER_MS);
  }

  /** Whether a job in the queue has waited `ms` ({@link GROW_AFTER_MS}) or more for a worker. */
  #queueStuck(ms = GROW_AFTER_MS): boolean {
    const now = performance.now();
    for (let slot = 0; slot < this.queue.slots; slot++) {
      if (this.queue.isPosted(slot) && now - this.#postedAt[slot] >= ms) return true;
    }
    return false;
  }

  /**
   * The run in `slot` (of module `moduleId`) is over and its answer read: the slot is free
   * again, and its worker, whose guest ended with `memoryBytes` of memory, may be replaced.
   */
  finished(slot: number, moduleId: number, memoryBytes: number): void {
    const worker = this.#alive.get(this.queue.takerOf(slot));
    this.queue.free(slot);
    this.#giveSlot(slot);
    this.#runOver(moduleId);
    if (worker) {
      worker.lastUsed = performance.now();
      if (!this.#keeps(worker, memoryBytes)) this.#retire(worker);
    }
    this.#serveWaiting();
  }

  /** Gives back `slot`, which a run had but never posted to (it was stopped first). */
  unused(slot: number): void {
    this.#giveSlot(slot);
    this.#serveWaiting();
  }

  /**
   * The run in `slot` (of module `moduleId`) is over but its worker was given up: the slot is
   * never used again (nothing the lost worker still does may reach another run).
   */
  lostSlot(moduleId: number): void {
    this.#lostSlots++;
    this.#runOver(moduleId);
  }

  /**
   * Whether the queue has slots left to use: each worker given up takes its slot with it, and
   * once none is left, runs go as messages to workers of their own.
   */
  get queueUsable(): boolean {
    return this.#lostSlots < this.queue.slots;
  }

  #runOver(moduleId: number): void {
    const left = (this.#queuedRuns.get(moduleId) ?? 1) - 1;
    if (left > 0) return void this.#queuedRuns.set(moduleId, left);
    this.#queuedRuns.delete(moduleId);
    if (this.#forgetLater.delete(moduleId)) this.#forgetNow([moduleId]);
  }

  #giveSlot(slot: number): void {
    const next = this.#waiting.length === 0 ? this.#slotWaiting.shift() : undefined;
    if (next) next(slot);
    else this.#freeSlots.push(slot);
  }

  /** Lets the runs waiting for a slot have one, once no run waits for a worker of its own. */
  #serveSlotWaiting(): void {
    while (this.#waiting.length === 0 && this.#slotWaiting.length > 0) {
      const free = this.#freeSlots.pop();
      if (free === undefined) return;
      this.#slotWaiting.shift()!(free);
    }
  }

  #ensureWarm(): void {
    if (this.#warmed) return;
    // The first run that needs the pool: this one starts its worker, the rest follow after.
    this.#warmed = true;
    queueMicrotask(() => this.#warmUp());
  }

  /** Starts workers until `warm` of them are alive, and the timer that stops surplus ones. */
  #warmUp(): void {
    this.#warmed = true;
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
    for (const worker of this.#alive.values()) {
      if (this.#alive.size <= this.options.warm) return;
      if (worker.starting || now - worker.lastUsed <= this.#idleMs) continue;
      // Only one that runs nothing: reserved, it takes no job from now on.
      if (worker.block.reserve()) this.#stop(worker);
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
    const id = this.#nextWorkerId++;
    const control = RunControl.create();
    const block = new WorkerBlock();
    worker.postMessage({
      type: "control",
      workerId: id,
      buffer: control.buffer,
      block: block.buffer,
      queue: this.queue.buffers,
      completions: this.completions.buffer,
      modules: [...this.#announced.values()],
    });
    const spawned: PoolWorker = {
      id,
      worker,
      control,
      block,
      modules: new Set(this.#announced.keys()),
      lastUsed: performance.now(),
      usedBytes: 0,
      starting: true,
      reserved: false,
    };
    this.#starting++;
    const slow = setTimeout(() => this.#started(spawned), SLOW_LOAD_MS);
    Deno.unrefTimer(slow);
    block.loaded().then(() => {
      clearTimeout(slow);
      this.#started(spawned);
      // It serves the queue by itself now; runs waiting for a worker of their own may have it.
      // Only a loaded worker is reserved: a run given one still loading would wait for all of
      // its loading, where another may free up much sooner (a worker started by a server
      // isolate that is itself a worker takes about a second to load).
      this.#serveWaiting();
    });
    // A worker that fails by itself (its script could not be loaded: no descriptor left, say)
    // is dropped; a run reserving it is told by its own handler, and gives it back failed.
    worker.addEventListener("error", (event) => {
      event.preventDefault();
      spawned.failed = true;
      this.#started(spawned);
      // A job it took is answered from here: it never will.
      for (let slot = 0; slot < this.queue.slots; slot++) {
        if (this.queue.takerOf(slot) === id) this.queue.mailbox(slot).fail(event.message);
      }
      this.completions.changed();
      // One that runs nothing goes now; else once its run is over.
      if (!spawned.reserved) this.replace(spawned);
    });
    this.#alive.set(id, spawned);
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

  /**
   * Starts a worker if runs wait for one (of their own, or in the queue for long), there is
   * room for one and none is loading.
   */
  #startMore(): void {
    if (this.#closed || this.#alive.size >= this.options.max || this.#starting > 0) return;
    if (this.#waiting.length === 0 && !this.#queueStuck()) return;
    if (!this.#spawn()) this.#retryLater();
  }

  #stop(worker: PoolWorker): void {
    this.#started(worker);
    if (worker.reserved) {
      worker.reserved = false;
      this.#reserved--;
    }
    worker.block.close();
    this.queue.wakeAll();
    worker.worker.terminate();
    this.#alive.delete(worker.id);
  }

  /**
   * Reserves a worker for a run sent as a message: one that runs nothing now, a new one, or
   * (at the maximum) the next one free; none once closed.
   */
  async acquire(): Promise<PoolWorker | undefined> {
    if (this.#closed) return undefined;
    this.#ensureWarm();
    const free = this.#waiting.length === 0 ? this.#reserveOne() : undefined;
    if (free) return free;
    // One worker loads at a time: a burst of runs on a cold pool would otherwise start every
    // worker at once, holding this thread (starting a worker does) and the cores (each loads
    // and compiles its code) for most of a second. Runs wait for a worker that frees up or
    // the next that loads, whichever comes first.
    const waited = new Promise<PoolWorker | undefined>((resolve) => this.#waiting.push(resolve));
    this.#startMore();
    this.#watchWaiting();
    return await waited;
  }

  /**
   * While runs wait for a worker of their own, tries again at each change workers signal: a
   * worker running a job from the queue becomes free only then (see guest_worker.ts).
   */
  #watchWaiting(): void {
    if (this.#watching) return;
    this.#watching = true;
    this.completions.until(() => {
      this.#serveWaiting();
      return this.#waiting.length === 0;
    }).then(() => (this.#watching = false));
  }

  /** A loaded worker that runs nothing, reserved; undefined when there is none. */
  #reserveOne(): PoolWorker | undefined {
    for (const worker of this.#alive.values()) {
      if (worker.starting || worker.failed || worker.reserved) continue;
      if (worker.block.reserve()) {
        worker.reserved = true;
        this.#reserved++;
        return worker;
      }
    }
    return undefined;
  }

  /** Hands workers that run nothing to the runs waiting for one; then slots to theirs. */
  #serveWaiting(): void {
    if (this.#waiting.length === 0 && this.#slotWaiting.length === 0) return;
    while (this.#waiting.length > 0) {
      const worker = this.#reserveOne();
      if (!worker) break;
      this.#waiting.shift()!(worker);
    }
    this.#serveSlotWaiting();
    this.#startMore();
  }

  /** Tries again to start workers for the runs waiting, until they have one. */
  #retryLater(): void {
    this.#retry ??= setTimeout(() => {
      this.#retry = undefined;
      this.#startMore();
    }, ROOM_RETRY_MS);
  }

  /**
   * Takes back a worker reserved for a run, whose guest ended with `memoryBytes` of memory: it
   * serves the queue again (or the next run waiting for a worker of its own) unless its guests
   * have used too much memory.
   */
  release(worker: PoolWorker, memoryBytes: number): void {
    worker.lastUsed = performance.now();
    if (!this.#keeps(worker, memoryBytes) || worker.retireAfterRun || this.#closed) {
      return this.replace(worker);
    }
    const next = this.#waiting.shift();
    if (next) return next(worker);
    worker.reserved = false;
    this.#reserved--;
    worker.block.unreserve();
    // It may be asleep: jobs may be waiting for it.
    this.queue.wakeAll();
    this.#serveSlotWaiting();
  }

  /** Adds what a run of `worker` used; false when it must be replaced. */
  #keeps(worker: PoolWorker, memoryBytes: number): boolean {
    worker.usedBytes += memoryBytes;
    return !worker.failed && memoryBytes <= this.options.replaceAboveBytes &&
      worker.usedBytes <= REPLACE_AFTER_BYTES;
  }

  /**
   * Replaces `worker` once it runs nothing: now if it runs nothing (or is dead); after its run
   * if it is reserved for one; else once it has said it retired, after the job it runs.
   */
  #retire(worker: PoolWorker): void {
    if (worker.failed) return this.replace(worker);
    if (worker.reserved) {
      worker.retireAfterRun = true;
      return;
    }
    if (worker.block.reserve()) return this.replace(worker);
    worker.block.retire();
    this.queue.wakeAll();
    // Or until it is gone some other way (it failed, was given up): nothing left to wait for.
    const gone = () => this.#alive.get(worker.id) !== worker;
    this.completions.until(() => worker.block.status === RETIRED || gone()).then(() => {
      if (!gone()) this.replace(worker);
    });
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

  /** Stops `worker` (running nothing, or given up) and starts another if one is wanted. */
  replace(worker: PoolWorker): void {
    if (this.#alive.get(worker.id) !== worker) return;
    this.#stop(worker);
    if (this.#closed) return;
    // The new one serves the queue, or takes a waiting run, once it has loaded.
    const wanted = this.#waiting.length > 0 || this.#alive.size < this.options.warm ||
      this.queue.posted > 0;
    if (wanted && !this.#spawn() && this.#waiting.length > 0) this.#retryLater();
  }

  /**
   * Stops the workers that run nothing, and the others once their run is over. Runs still
   * waiting get none.
   */
  close(): void {
    this.#closed = true;
    clearInterval(this.#trimTimer);
    clearTimeout(this.#retry);
    clearTimeout(this.#checkTimer);
    for (const waiter of this.#waiting.splice(0)) waiter(undefined);
    for (const waiter of this.#slotWaiting.splice(0)) waiter(undefined);
    for (const worker of [...this.#alive.values()]) {
      if (worker.reserved) continue; // its run's release stops it
      if (worker.block.reserve()) this.#stop(worker);
      else this.#retire(worker);
    }
  }
}
