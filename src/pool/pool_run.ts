/**
 * One run in the pool, from its spec to its outcome: wait for a slot of its group and for a
 * worker, hand the worker the job, feed the request body into the stdin ring and stream the
 * stdout ring out, and stop the guest at its deadline, on a cancel or when the server stops.
 * @module
 */

import { ByteRing, type RingStock } from "./byte_ring.ts";
import type { GroupLimits } from "./group_limits.ts";
import type { PoolWorker, Workers } from "./workers.ts";
import type { RunJob, RunReport } from "./protocol.ts";
import { pumpStdin } from "./stdin_pump.ts";
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
  /** Ends the wait for the worker's report (set while the guest runs). */
  #abandon: (() => void) | undefined;
  #stdinFinished!: () => void;

  constructor(parts: PoolParts, spec: RunSpec) {
    this.#parts = parts;
    this.#spec = spec;
    this.#stdinBuffer = parts.rings.take();
    this.#stdoutBuffer = parts.rings.take();
    this.#stdinRing = new ByteRing(this.#stdinBuffer);
    this.#stdoutRing = new ByteRing(this.#stdoutBuffer);
    const stdinDone = new Promise<void>((resolve) => (this.#stdinFinished = resolve));
    if (spec.stdin === null) this.#stdinFinished();
    const done = this.#run();
    // However the run ended, its body is no longer wanted and its group slot is free.
    done.finally(() => {
      this.#stdinFinished();
      parts.groups.leave(spec.group);
    });
    this.execution = {
      stdout: this.#stdoutStream(done),
      done,
      stdinDone,
      cancel: () => this.stop("cancelled"),
    };
  }

  /** Stops the guest (the first reason given is the one reported). */
  stop(reason: StopReason): void {
    this.#stopReason ??= reason;
    this.#abandon?.();
  }

  /** stdout as a byte stream: readers may bring their own buffer (BYOB) and reuse it. */
  #stdoutStream(done: Promise<RunOutcome>): ReadableStream<Uint8Array> {
    const ring = this.#stdoutRing;
    const buffer = this.#stdoutBuffer;
    const rings = this.#parts.rings;
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
          // Read to the end after the guest ended: nobody uses this ring any more.
          done.then(() => rings.give(buffer));
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
    await groups.enter(spec.group);
    const worker = await workers.acquire();
    if (!worker) {
      this.#stdoutRing.close();
      return stoppedOutcome("server-stopping", spec);
    }
    const report = this.#report(worker);
    worker.worker.postMessage(this.#job(worker));
    const timer = setTimeout(() => this.stop("timeout"), spec.timeoutMs);
    const pump = pumpStdin(
      spec.stdin,
      this.#stdinRing,
      spec.maxStdin,
      () => this.stop("body-too-large"),
    );
    pump.finished.then(this.#stdinFinished);
    const result = await report;
    clearTimeout(timer);
    // Whatever of the body has not arrived yet is no longer wanted.
    pump.stop();
    this.#stdinRing.abandon();
    pump.finished.then(() => this.#parts.rings.give(this.#stdinBuffer));
    if (result === "stopped") {
      // The guest may be in an endless loop: only terminating its worker stops it.
      workers.replace(worker);
      this.#stdoutRing.close();
      return stoppedOutcome(this.#stopReason!, spec);
    }
    workers.release(worker, result.memoryBytes);
    return {
      exitCode: result.exitCode,
      failure: result.failure,
      stop: undefined,
      stderr: result.stderr,
      truncated: result.truncated,
    };
  }

  /** The job for `worker`: the module goes along the first time that worker runs it. */
  #job(worker: PoolWorker): RunJob {
    const spec = this.#spec;
    const moduleId = this.#parts.moduleId(spec.module);
    const job: RunJob = {
      moduleId,
      module: worker.modules.has(moduleId) ? undefined : spec.module,
      entrypoint: spec.entrypoint,
      args: spec.args,
      env: spec.env,
      preopens: spec.preopens,
      stdin: this.#stdinBuffer,
      stdout: this.#stdoutBuffer,
      maxOutput: spec.maxOutput,
      maxStderr: MAX_STDERR,
      outbound: spec.outbound,
    };
    worker.modules.add(moduleId);
    return job;
  }

  /** The worker's report, or "stopped" when the run is stopped first. */
  #report(worker: PoolWorker): Promise<RunReport | "stopped"> {
    return new Promise((resolve) => {
      worker.worker.onmessage = (event: MessageEvent<RunReport>) => resolve(event.data);
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
      this.#abandon = () => resolve("stopped");
      if (this.#stopReason) resolve("stopped");
    });
  }
}
