/**
 * The worker pool: runs guests on worker threads, each running one guest at a time. Guests
 * stream stdin from the request body and stdout to the response through byte rings (see
 * pool_run.ts); a guest past its deadline, cancelled or cut off by a stop is told to stop
 * through its worker's control block and traps by itself (see control.ts), and its worker
 * serves the next run.
 * @module
 */

import { RingStock } from "./byte_ring.ts";
import { GroupLimits } from "./group_limits.ts";
import { Workers } from "./workers.ts";
import { type PoolParts, PoolRun } from "./pool_run.ts";
import { Deadlines } from "./deadlines.ts";
import type { Execution, Executor, RunSpec } from "../run/contract.ts";

/** Ring size for each direction: what may be in flight between server and guest. */
const RING_BYTES = 64 * 1024;

/** Spare rings kept for reuse. */
const SPARE_RINGS = 64;

/** A worker whose guest grew its memory past this is replaced, so the memory goes back. */
const REPLACE_WORKER_ABOVE_BYTES = 32 * 1024 * 1024;

/**
 * How long a stopped guest may take to unwind before its worker is given up. A guest in
 * WebAssembly stops within one refill of fuel, a waiting one at once; only a host call that
 * cannot be woken (a blocking read of a FIFO in a volume) takes longer.
 */
const STOP_GRACE_MS = 2000;

/** How the pool is sized. */
export interface PoolOptions {
  /** Workers started up front and kept idle. */
  warm: number;
  /** Start the warm workers when a run first needs one, not at once (see workers.ts). */
  lazy?: boolean;
  /** Most guests running at once; more requests wait for a worker. */
  max: number;
  /**
   * Most guests of one group (one route) running at once (default: half of `max`), so that a
   * route whose modules never end (until their timeout) cannot take every worker.
   */
  maxPerGroup?: number;
  /** A worker whose guest ended with more memory than this is replaced (default 32 MiB). */
  replaceAboveBytes?: number;
  /** Workers beyond the warm ones idle this long are stopped (default 30 s). */
  idleWorkerMs?: number;
  /** How long a stopped guest may take to unwind before its worker is given up (2 s). */
  stopGraceMs?: number;
  /**
   * Told when a worker is given up (its stopped guest did not unwind in time), or could not
   * be started (the process had no descriptors to spare).
   */
  onWorkerLost?: (message: string) => void;
}

/** Runs guests on a pool of workers. */
export class WorkerPool implements Executor {
  /** Bodies are streamed into the pool's guests as they arrive. */
  readonly wholeStdinBytes = 0;
  #parts: PoolParts;
  #moduleIds = new WeakMap<WebAssembly.Module, number>();
  #nextModuleId = 1;
  /** Every run in progress. */
  #running = new Set<PoolRun>();

  constructor(readonly options: PoolOptions) {
    const max = Math.max(options.max, options.warm);
    this.#parts = {
      workers: new Workers({
        warm: options.warm,
        lazy: options.lazy,
        max,
        replaceAboveBytes: options.replaceAboveBytes ?? REPLACE_WORKER_ABOVE_BYTES,
        idleWorkerMs: options.idleWorkerMs,
        onLost: options.onWorkerLost,
        onNoRoom: options.onWorkerLost,
      }),
      groups: new GroupLimits(options.maxPerGroup ?? Math.max(1, Math.floor(max / 2))),
      rings: new RingStock(RING_BYTES, SPARE_RINGS),
      moduleId: (module) => this.#moduleId(module),
      graceMs: options.stopGraceMs ?? STOP_GRACE_MS,
      deadlines: new Deadlines(),
      ended: (run) => this.#running.delete(run),
    };
  }

  /** Workers alive now, busy or idle. */
  get workers(): number {
    return this.#parts.workers.count;
  }

  /** Runs waiting in the pool now: for their route's share of it, or for a worker. */
  get queued(): number {
    return this.#parts.groups.waiting + this.#parts.workers.waiting;
  }

  /** Workers started so far, replacements included. */
  get startedWorkers(): number {
    return this.#parts.workers.started;
  }

  /** Workers given up so far because a stopped guest would not unwind. */
  get lostWorkers(): number {
    return this.#parts.workers.lost;
  }

  #moduleId(module: WebAssembly.Module): number {
    let id = this.#moduleIds.get(module);
    if (id === undefined) {
      id = this.#nextModuleId++;
      this.#moduleIds.set(module, id);
    }
    return id;
  }

  run(spec: RunSpec): Execution {
    const run = new PoolRun(this.#parts, spec);
    if (!run.ended) this.#running.add(run);
    return run;
  }

  /** Workers let go of `modules` (no longer served); a run that needs one sends it again. */
  forget(modules: Iterable<WebAssembly.Module>): void {
    const ids = [...modules].flatMap((module) => {
      const id = this.#moduleIds.get(module);
      return id === undefined ? [] : [id];
    });
    this.#parts.workers.forget(ids);
  }

  /** Stops every run (their guests unwind), then every worker as it comes back idle. */
  close(): void {
    for (const run of [...this.#running]) run.stop("server-stopping");
    this.#parts.workers.close();
    this.#parts.groups.close();
    this.#parts.deadlines.close();
  }
}
