/**
 * One run in the pool, from its spec to its outcome: wait for a slot of its group and for a
 * worker, hand the worker the job, feed the request body into the stdin ring and stream the
 * stdout ring out, and stop the guest at its deadline, on a cancel or when the server stops.
 *
 * A stop is answered at once; the guest, told through its worker's control block, unwinds by
 * itself, and only then are its worker and rings used again: nothing a stopped guest still
 * does can reach another run. A guest that does not unwind within a grace period (a host call
 * that cannot be woken) has its worker given up.
 * @module
 */

import { ByteRing, type RingStock } from "./byte_ring.ts";
import type { GroupLimits } from "./group_limits.ts";
import type { PoolWorker, Workers } from "./workers.ts";
import type { RunJob, RunReport } from "./protocol.ts";
import { pumpStdin, type StdinPump } from "./stdin_pump.ts";
import { moduleInfo, reuseInfo } from "../run/module_info.ts";
import {
  type Execution,
  MAX_STDERR,
  type RunOutcome,
  type RunSpec,
  type StopReason,
} from "../run/contract.ts";

/** What a run takes from its pool. */
export interface PoolParts {
  workers: Workers;
  groups: GroupLimits;
  rings: RingStock;
  /** The id workers know `module` by. */
  moduleId(module: WebAssembly.Module): number;
  /** How long a stopped guest may take to unwind before its worker is given up. */
  graceMs: number;
}

/** How a stopped run's failure reads in the log. */
function stopMessage(reason: StopReason, spec: RunSpec): string {
  switch (reason) {
    case "timeout":
      return `timed out after ${spec.timeoutMs} ms`;
    case "body-too-large":
      return `request body over ${spec.maxStdin} bytes`;
    case "server-stopping":
      return "stopped: the server is shutting down";
    case "cancelled":
      return "cancelled";
  }
}

/** The outcome of a run that was stopped before its guest ended. */
function stoppedOutcome(reason: StopReason, spec: RunSpec): RunOutcome {
  return {
    exitCode: 0,
    failure: stopMessage(reason, spec),
    stop: reason,
    stderr: new Uint8Array(),
    truncated: true,
  };
}

/** One run of a guest in a worker. */
export class PoolRun {
  /** The run as the server sees it. */
  readonly execution: Execution;
  #parts: PoolParts;
  #spec: RunSpec;
  #stdinBuffer: SharedArrayBuffer;
  #stdoutBuffer: SharedArrayBuffer;
  #stdinRing: ByteRing;
  #stdoutRing: ByteRing;
  #stopReason: StopReason | undefined;
  /** Resolves when the run is stopped. */
  #stopped: Promise<"stopped">;
  #markStopped!: (value: "stopped") => void;
  /** Tells the guest to stop (set while a worker has the job). */
  #interrupt: (() => void) | undefined;
  /**
   * Resolves once the guest has ended and nothing touches this run's rings: true, so they may
   * serve another run; false when its worker was given up and they never may.
   */
  #released: Promise<boolean>;
  #release!: (reusable: boolean) => void;
  #stdinFinished!: () => void;

  constructor(parts: PoolParts, spec: RunSpec) {
    this.#parts = parts;
    this.#spec = spec;
    this.#stdinBuffer = parts.rings.take();
    this.#stdoutBuffer = parts.rings.take();
    this.#stdinRing = new ByteRing(this.#stdinBuffer);
    this.#stdoutRing = new ByteRing(this.#stdoutBuffer);
    this.#stopped = new Promise((resolve) => (this.#markStopped = resolve));
    this.#released = new Promise((resolve) => (this.#release = resolve));
    const stdinDone = new Promise<void>((resolve) => (this.#stdinFinished = resolve));
    if (spec.stdin === null) this.#stdinFinished();
    const done = this.#run();
    // However the run ended, its body is no longer wanted and its group slot is free.
    done.finally(() => {
      this.#stdinFinished();
      parts.groups.leave(spec.group);
    });
    this.execution = {
      stdout: this.#stdoutStream(),
      done,
      stdinDone,
      cancel: () => this.stop("cancelled"),
    };
  }

  /** Stops the guest (the first reason given is the one reported). */
  stop(reason: StopReason): void {
    if (this.#stopReason) return;
    this.#stopReason = reason;
    this.#interrupt?.();
    this.#markStopped("stopped");
  }

  /** stdout as a byte stream: readers may bring their own buffer (BYOB) and reuse it. */
  #stdoutStream(): ReadableStream<Uint8Array> {
    const ring = this.#stdoutRing;
    const buffer = this.#stdoutBuffer;
    const rings = this.#parts.rings;
    const released = this.#released;
    return new ReadableStream({
      type: "bytes",
      autoAllocateChunkSize: rings.capacity,
      async pull(controller) {
        const request = controller.byobRequest!;
        const view = request.view!;
        const n = await ring.readInto(
          new Uint8Array(view.buffer, view.byteOffset, view.byteLength),
        );
        if (n > 0) request.respond(n);
        else {
          controller.close();
          request.respond(0);
          // Read to the end: the ring is free once the guest has ended too.
          released.then((reusable) => reusable && rings.give(buffer));
        }
      },
      cancel() {
        ring.abandon();
      },
    });
  }

  async #run(): Promise<RunOutcome> {
    const spec = this.#spec;
    const { workers, groups } = this.#parts;
    if (!moduleInfo(spec.module).preemptible) {
      // A guest that could not be stopped would keep its worker for good: never run one.
      this.#release(true);
      this.#stdoutRing.close();
      return {
        exitCode: 0,
        failure: "the module was not compiled preemptible: the pool does not run it",
        stop: undefined,
        stderr: new Uint8Array(),
        truncated: false,
      };
    }
    await groups.enter(spec.group);
    const worker = await workers.acquire();
    if (!worker || this.#stopReason) {
      // Never started: no guest touched the rings.
      if (worker) workers.release(worker, 0);
      this.#release(true);
      this.#stdoutRing.close();
      return stoppedOutcome(this.#stopReason ?? "server-stopping", spec);
    }
    const runId = workers.nextRunId();
    this.#interrupt = () => {
      // The control block first: a guest woken by its rings must find itself stopped.
      worker.control.stop(runId);
      worker.worker.postMessage({ type: "stop", runId });
      this.#stdinRing.interrupt();
      this.#stdoutRing.interrupt();
    };
    const report = this.#report(worker);
    worker.worker.postMessage(this.#job(worker, runId));
    const timer = setTimeout(() => this.stop("timeout"), spec.timeoutMs);
    const pump = pumpStdin(
      spec.stdin,
      this.#stdinRing,
      spec.maxStdin,
      () => this.stop("body-too-large"),
    );
    pump.finished.then(this.#stdinFinished);
    const first = await Promise.race([report, this.#stopped]);
    clearTimeout(timer);
    // Whatever of the body has not arrived yet is no longer wanted.
    pump.stop();
    if (first === "stopped") {
      this.#afterStop(worker, report, pump);
      return stoppedOutcome(this.#stopReason!, spec);
    }
    this.#interrupt = undefined;
    this.#stdinRing.abandon();
    this.#giveBackStdin(pump);
    this.#release(true);
    workers.release(worker, first.memoryBytes);
    return {
      exitCode: first.exitCode,
      failure: first.failure,
      stop: undefined,
      stderr: first.stderr,
      truncated: first.truncated,
    };
  }

  /**
   * Waits for a stopped guest to unwind: then its worker serves again and its rings are
   * free; after the grace period the worker is given up, and the rings with it.
   */
  async #afterStop(worker: PoolWorker, report: Promise<RunReport>, pump: StdinPump) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), this.#parts.graceMs);
    });
    const ended = await Promise.race([report, grace]);
    clearTimeout(timer);
    if (ended === "late") {
      this.#release(false);
      this.#parts.workers.giveUp(
        worker,
        `a guest stopped (${this.#stopReason}) did not end within ${this.#parts.graceMs} ms`,
      );
      return;
    }
    this.#giveBackStdin(pump);
    this.#release(true);
    this.#parts.workers.release(worker, ended.memoryBytes);
  }

  /** The stdin ring goes back once the body feeding has let go of it too. */
  #giveBackStdin(pump: StdinPump): void {
    pump.finished.then(() => this.#parts.rings.give(this.#stdinBuffer));
  }

  /** The job for `worker`: the module goes along the first time that worker runs it. */
  #job(worker: PoolWorker, runId: number): RunJob {
    const spec = this.#spec;
    const moduleId = this.#parts.moduleId(spec.module);
    const job: RunJob = {
      type: "run",
      runId,
      moduleId,
      ...(worker.modules.has(moduleId)
        ? {}
        : { module: spec.module, reuse: reuseInfo(spec.module) }),
      entrypoint: spec.entrypoint,
      args: spec.args,
      env: spec.env,
      preopens: spec.preopens,
      stdin: this.#stdinBuffer,
      stdout: this.#stdoutBuffer,
      maxOutput: spec.maxOutput,
      maxDescriptors: spec.maxDescriptors,
      maxStderr: MAX_STDERR,
      outbound: spec.outbound,
    };
    worker.modules.add(moduleId);
    return job;
  }

  /** The worker's report of how the guest ended. */
  #report(worker: PoolWorker): Promise<RunReport> {
    return new Promise((resolve) => {
      worker.worker.onmessage = (event: MessageEvent<RunReport>) => resolve(event.data);
      worker.worker.onerror = (event) => {
        event.preventDefault();
        // The worker is gone (its script did not even load, say): it will never close the
        // stdout ring, so it is closed on its behalf and the response ends with this report.
        this.#stdoutRing.close();
        resolve({
          exitCode: 0,
          failure: `worker failed: ${event.message}`,
          memoryBytes: Infinity,
          stderr: new Uint8Array(),
          truncated: false,
          stopped: false,
        });
      };
    });
  }
}
