/**
 * The server's executor: a pool of workers, each running one guest at a time. Guests stream
 * stdin from the request body and stdout to the response through byte rings; a guest past its
 * deadline is stopped by terminating its worker, which a fresh one replaces, so nothing else
 * running is touched.
 * @module
 */

import { ByteRing, createRing, type RingBuffer } from "./byte_ring.ts";
import {
  endedOutcome,
  type Execution,
  type Executor,
  type GuestOutcome,
  type GuestRequest,
  MAX_STDERR,
} from "./executor.ts";
import type { GuestJob, GuestReport } from "./worker_protocol.ts";

/** Ring size for each direction: what may be in flight between server and guest. */
const RING_BYTES = 64 * 1024;
/** The worker script. */
const GUEST_WORKER_URL = new URL("./guest_worker.ts", import.meta.url).href;

/** Spare rings kept for reuse. */
const SPARE_RINGS = 64;

/** How the pool is sized. */
export interface PoolOptions {
  /** Workers started up front and kept idle. */
  warm: number;
  /** Most guests running at once; more requests wait for a worker. */
  max: number;
  /** A worker whose guest ended with more memory than this is replaced, returning it to the OS. */
  retireAboveBytes: number;
  /**
   * Most guests of one group (one route) running at once, so that a route whose modules
   * never end (until their timeout) cannot take every worker: other routes keep the rest.
   */
  maxPerGroup: number;
  /** Workers beyond the warm ones idle this long are stopped (default 30 s). */
  idleWorkerMs?: number;
}

interface PoolWorker {
  worker: Worker;
  /** Modules this worker already holds, by id. */
  modules: Set<number>;
  /** When it last went idle (performance.now()). */
  idleSince: number;
  /** Linear memory its guests have used so far, added up. */
  usedBytes: number;
}

/**
 * A worker whose guests have used this much linear memory in total is replaced. Dead guest
 * instances are only freed when the worker's heap is collected, which V8 does rarely for a
 * heap of small objects; replacing the worker hands the memory back at once. For a 128 KiB
 * module that is one new worker (a few milliseconds) every 2,000 requests.
 */
const RECYCLE_AFTER_BYTES = 256 * 1024 * 1024;

/** Why a run was stopped before its guest ended. */
type StopReason = "timeout" | "stdin too large" | "cancelled" | "server stopping";

/** Default for how long a worker beyond the warm ones may sit idle before it is stopped. */
const IDLE_WORKER_MS = 30_000;

/** Runs guests on a pool of workers. */
export class WorkerPool implements Executor {
  #idle: PoolWorker[] = [];
  #count = 0;
  /** Runs waiting for a worker; `undefined` tells them the pool closed. */
  #waiting: ((worker: PoolWorker | undefined) => void)[] = [];
  #moduleIds = new WeakMap<WebAssembly.Module, number>();
  /** Running guests per group, and the runs of each group waiting for a slot. */
  #groups = new Map<string, { running: number; waiting: (() => void)[] }>();
  #nextModuleId = 1;
  #closed = false;
  /** Stops every run in progress, by run. */
  #running = new Set<() => void>();

  #trimTimer: number;
  #idleMs: number;

  constructor(readonly options: PoolOptions) {
    this.#idleMs = options.idleWorkerMs ?? IDLE_WORKER_MS;
    for (let i = 0; i < options.warm; i++) this.#idle.push(this.#spawn());
    // A burst may have started up to `max` workers: the extra ones go once they sit idle.
    // Deno timers are numbers (the type says Timeout when Node types are loaded).
    this.#trimTimer = setInterval(() => this.#trimIdle(), this.#idleMs / 2) as unknown as number;
    Deno.unrefTimer(this.#trimTimer);
  }

  #trimIdle(): void {
    const now = performance.now();
    // Idle workers are taken from the end, so the longest idle ones are at the front.
    while (
      this.#idle.length > this.options.warm && now - this.#idle[0].idleSince > this.#idleMs
    ) {
      this.#idle.shift()!.worker.terminate();
      this.#count--;
    }
  }

  /** Workers alive now, busy or idle. */
  get workers(): number {
    return this.#count;
  }

  #spawn(): PoolWorker {
    this.#count++;
    const worker = new Worker(GUEST_WORKER_URL, {
      type: "module",
    });
    return { worker, modules: new Set(), idleSince: performance.now(), usedBytes: 0 };
  }

  async #acquire(): Promise<PoolWorker | undefined> {
    if (this.#closed) return undefined;
    const idle = this.#idle.pop();
    if (idle) return idle;
    if (this.#count < this.options.max) return this.#spawn();
    return await new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Hands a worker back, or replaces it when it was stopped or grew too large. */
  #release(worker: PoolWorker, reusable: boolean): void {
    if (!reusable) {
      worker.worker.terminate();
      this.#count--;
      if (this.#closed) return;
      if (this.#waiting.length > 0) worker = this.#spawn();
      else {
        if (this.#idle.length < this.options.warm) this.#idle.push(this.#spawn());
        return;
      }
    }
    const next = this.#waiting.shift();
    if (next) next(worker);
    else if (this.#closed) {
      worker.worker.terminate();
      this.#count--;
    } else {
      worker.idleSince = performance.now();
      this.#idle.push(worker);
    }
  }

  /** Waits until the group has a free slot (groups without a name are not limited). */
  async #enterGroup(name: string | undefined): Promise<void> {
    if (name === undefined) return;
    let group = this.#groups.get(name);
    if (!group) {
      group = { running: 0, waiting: [] };
      this.#groups.set(name, group);
    }
    if (group.running >= this.options.maxPerGroup && !this.#closed) {
      await new Promise<void>((resolve) => group!.waiting.push(resolve));
    }
    group.running++;
  }

  #leaveGroup(name: string | undefined): void {
    const group = name === undefined ? undefined : this.#groups.get(name);
    if (!group) return;
    group.running--;
    group.waiting.shift()?.();
    if (group.running === 0 && group.waiting.length === 0) this.#groups.delete(name!);
  }

  #moduleId(module: WebAssembly.Module): number {
    let id = this.#moduleIds.get(module);
    if (id === undefined) {
      id = this.#nextModuleId++;
      this.#moduleIds.set(module, id);
    }
    return id;
  }

  /** Rings no run is using, kept so that a request does not allocate and zero new ones. */
  #spareRings: RingBuffer[] = [];

  #takeRing(): RingBuffer {
    const ring = this.#spareRings.pop();
    if (!ring) return createRing(RING_BYTES);
    new ByteRing(ring).reset();
    return ring;
  }

  #returnRing(ring: RingBuffer): void {
    if (this.#spareRings.length < SPARE_RINGS) this.#spareRings.push(ring);
  }

  run(request: GuestRequest): Execution {
    const stdinBuffer = this.#takeRing();
    const stdoutBuffer = this.#takeRing();
    const stdinRing = new ByteRing(stdinBuffer);
    const stdoutRing = new ByteRing(stdoutBuffer);
    const returnRing = (ring: RingBuffer) => this.#returnRing(ring);
    let stdinFinished!: () => void;
    const stdinDone = new Promise<void>((resolve) => (stdinFinished = resolve));
    if (request.stdin === null) stdinFinished();
    let stop: (() => void) | undefined;
    let stopReason: StopReason | undefined;
    const stopRun = () => requestStop("server stopping");
    this.#running.add(stopRun);
    const requestStop = (reason: StopReason) => {
      stopReason ??= reason;
      stop?.();
    };

    // A byte stream: readers may bring their own buffer (BYOB) and reuse it.
    const stdout = new ReadableStream({
      type: "bytes",
      autoAllocateChunkSize: RING_BYTES,
      async pull(controller) {
        const request = controller.byobRequest!;
        const view = request.view!;
        const n = await stdoutRing.readInto(
          new Uint8Array(view.buffer, view.byteOffset, view.byteLength),
        );
        if (n > 0) request.respond(n);
        else {
          controller.close();
          request.respond(0);
          // Read to the end after the guest ended: nobody uses this ring any more.
          done.then(() => returnRing(stdoutBuffer));
        }
      },
      cancel() {
        stdoutRing.abandon();
      },
    });

    const done = (async (): Promise<GuestOutcome> => {
      await this.#enterGroup(request.group);
      const worker = await this.#acquire();
      if (!worker) {
        stdoutRing.close();
        return {
          exitCode: 0,
          failure: "stopped: the server is shutting down",
          stderr: new Uint8Array(),
          timedOut: false,
          stdinTooLarge: false,
          cancelled: false,
          serverStopping: true,
          truncated: false,
          elapsedMs: 0,
        };
      }
      const moduleId = this.#moduleId(request.module);
      const job: GuestJob = {
        moduleId,
        module: worker.modules.has(moduleId) ? undefined : request.module,
        entrypoint: request.entrypoint,
        args: request.args,
        env: request.env,
        preopens: request.preopens,
        stdin: stdinBuffer,
        stdout: stdoutBuffer,
        maxOutput: request.maxOutput,
        maxStderr: MAX_STDERR,
        outbound: request.outbound,
      };
      worker.modules.add(moduleId);
      const started = performance.now();
      const report = new Promise<GuestReport | "stopped">((resolve) => {
        worker.worker.onmessage = (event: MessageEvent<GuestReport>) => resolve(event.data);
        worker.worker.onerror = (event) => {
          event.preventDefault();
          resolve({
            exitCode: 0,
            failure: `worker failed: ${event.message}`,
            memoryBytes: Infinity,
            stderr: new Uint8Array(),
            truncated: false,
          });
        };
        stop = () => resolve("stopped");
        if (stopReason) resolve("stopped");
      });
      worker.worker.postMessage(job);
      const timer = setTimeout(() => requestStop("timeout"), request.timeoutMs);
      const pump = pumpStdin(
        request.stdin,
        stdinRing,
        request.maxStdin,
        () => requestStop("stdin too large"),
      );
      pump.finished.then(stdinFinished);
      const result = await report;
      clearTimeout(timer);
      // Whatever of the body has not arrived yet is no longer wanted.
      pump.stop();
      stdinRing.abandon();
      pump.finished.then(() => returnRing(stdinBuffer));
      if (result === "stopped") {
        // The guest may be in an endless loop: only terminating its worker stops it.
        this.#release(worker, false);
        stdoutRing.close();
        return {
          exitCode: 0,
          failure: stopReason === "timeout"
            ? `timed out after ${request.timeoutMs} ms`
            : stopReason === "stdin too large"
            ? `request body over ${request.maxStdin} bytes`
            : stopReason === "server stopping"
            ? "stopped: the server is shutting down"
            : "cancelled",
          stderr: new Uint8Array(),
          timedOut: stopReason === "timeout",
          stdinTooLarge: stopReason === "stdin too large",
          cancelled: stopReason === "cancelled",
          serverStopping: stopReason === "server stopping",
          truncated: true,
          elapsedMs: performance.now() - started,
        };
      }
      worker.usedBytes += result.memoryBytes;
      this.#release(
        worker,
        result.memoryBytes <= this.options.retireAboveBytes &&
          worker.usedBytes <= RECYCLE_AFTER_BYTES,
      );
      return endedOutcome({
        exitCode: result.exitCode,
        failure: result.failure,
        stderr: result.stderr,
        truncated: result.truncated,
        elapsedMs: performance.now() - started,
      });
    })();

    // A run that never started (the pool was closed) has no body to wait for either.
    done.catch(() => {}).finally(() => {
      stdinFinished();
      this.#running.delete(stopRun);
      this.#leaveGroup(request.group);
    });
    return { stdout, done, stdinDone, cancel: () => requestStop("cancelled") };
  }

  /** Stops every worker; guests still running are cut off. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#trimTimer);
    for (const stopRun of [...this.#running]) stopRun();
    for (const waiter of this.#waiting.splice(0)) waiter(undefined);
    for (const group of this.#groups.values()) for (const next of group.waiting.splice(0)) next();
    for (const worker of this.#idle) worker.worker.terminate();
    this.#count -= this.#idle.length;
    this.#idle = [];
  }
}

/**
 * Feeds the request body into the stdin ring as the guest makes room, then closes it. Calls
 * `tooLarge` once more than `max` bytes arrived. `stop` stops feeding (the guest ended or was
 * stopped) and lets go of the body; `finished` settles when the ring is no longer touched.
 */
function pumpStdin(
  body: ReadableStream<Uint8Array> | Uint8Array | null,
  ring: ByteRing,
  max: number,
  tooLarge: () => void,
): { stop: () => void; finished: Promise<void> } {
  if (!body) {
    ring.close();
    return { stop: () => {}, finished: Promise.resolve() };
  }
  if (body instanceof Uint8Array) {
    if (body.length > max) tooLarge();
    const finished = (body.length > max ? Promise.resolve(false) : ring.write(body))
      .catch(() => false)
      .then(() => ring.close());
    return { stop: () => {}, finished };
  }
  const reader = body.getReader();
  const finished = (async () => {
    let total = 0;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        total += value.length;
        if (total > max) {
          tooLarge();
          break;
        }
        if (!(await ring.write(value))) break;
      }
    } catch {
      // The client went away mid-upload, or feeding was stopped: stdin ends here.
    } finally {
      ring.close();
    }
  })();
  return { stop: () => void reader.cancel().catch(() => {}), finished };
}
