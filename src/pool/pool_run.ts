/**
 * One run in the pool, from its spec to its outcome: wait for a share of its group, post the job
 * or hand it to a worker of its own, and stop the guest at its deadline (which counts from
 * here: waiting for a worker counts too), on a cancel or when the server stops. A run without a
 * body to stream is posted to the job queue (see job_queue.ts), which any worker takes, and
 * most often comes back whole; any other is sent as a message to a worker reserved for it, with
 * the request body fed into a stdin ring and stdout streamed from a ring.
 *
 * A stop is answered at once. A job no worker took yet is withdrawn; a guest that runs, told
 * through its worker's control block, unwinds by itself, and only then are its worker and rings
 * used again: nothing a stopped guest still does can reach another run. A guest that does not
 * unwind within a grace period (a host call that cannot be woken) has its worker given up, and
 * its slot or rings with it.
 * @module
 */

import { ByteRing, type RingStock } from "./byte_ring.ts";
import { POSTED, STREAMING, WORKER_FAILED, workerFailed } from "./mailbox.ts";
import { GAVE_UP } from "./completions.ts";
import { BytesOutput, RingOutput, type RunOutput } from "./run_output.ts";
import { NO_BYTES } from "../wasi/streams.ts";
import type { GroupLimits } from "./group_limits.ts";
import type { PoolWorker, Workers } from "./workers.ts";
import type { RunJob, RunReport } from "./protocol.ts";
import { pumpStdin } from "./stdin_pump.ts";
import type { Deadline, Deadlines } from "./deadlines.ts";
import { moduleInfo, reuseInfo } from "../run/module_info.ts";
import { componentParts } from "../run/module_component.ts";
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
  /** Where runs' deadlines are kept. */
  deadlines: Deadlines;
  /** Told when a run has ended. */
  ended(run: PoolRun): void;
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

/** The outcome of a run whose guest ended, as its worker reported it. */
function reportedOutcome(report: RunReport): RunOutcome {
  return {
    exitCode: report.exitCode,
    failure: report.failure,
    stop: undefined,
    stderr: report.stderr,
    truncated: report.truncated,
  };
}

/** What a job withdrawn before any worker took it is answered with: it never ran. */
function withdrawnReport(): RunReport {
  return {
    exitCode: 0,
    memoryBytes: 0,
    stderr: NO_BYTES,
    truncated: true,
    stopped: true,
  };
}

/** What waiting for a body already in hand resolves to at once. */
const NOTHING_TO_WAIT_FOR = Promise.resolve();

/** A run's stdout and outcome, when it ended with all of its stdout in hand. */
type Whole = { stdout: Uint8Array<ArrayBuffer>; outcome: RunOutcome };

/** How the worker answered: its report, or that the run was stopped first. */
type Answer = RunReport | "stopped";

/**
 * One run of a guest in a worker; it is its own {@link Execution} (one object per run, not
 * a run and a view of it: a short run in the pool allocated several kilobytes on the server's
 * thread, and collecting them was a sixth of its time there).
 */
export class PoolRun implements Execution {
  readonly done: Promise<RunOutcome>;
  readonly stdinDone: Promise<void>;
  readonly whole: Promise<Whole | undefined>;
  /** Its guest has ended, or never started. */
  ended = false;
  #parts: PoolParts;
  #spec: RunSpec;
  #stopReason: StopReason | undefined;
  /** Resolves when the run is stopped (made when first waited for: see #whenStopped). */
  #stopped: Promise<"stopped"> | undefined;
  #markStopped: ((value: "stopped") => void) | undefined;
  /** A stopped guest's grace period is over (see #queued), and its timer. */
  #graceOver = false;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  /** Tells the guest to stop (set while a worker has the job). */
  #interrupt: (() => void) | undefined;
  #stdinFinished: () => void = () => {};
  /** Where stdout is read from, once the run knows; and who waits for it to know. */
  #output: RunOutput | undefined;
  #outputKnown: ((output: RunOutput) => void) | undefined;
  #outputPromise: Promise<RunOutput> | undefined;
  #setWhole!: (whole: Whole | undefined) => void;
  #stdout: ReadableStream<Uint8Array> | undefined;

  constructor(parts: PoolParts, spec: RunSpec) {
    this.#parts = parts;
    this.#spec = spec;
    this.whole = new Promise<Whole | undefined>((resolve) => (this.#setWhole = resolve));
    // A body in hand is never waited for: no promise to make for it.
    this.stdinDone = spec.stdin instanceof ReadableStream
      ? new Promise<void>((resolve) => (this.#stdinFinished = resolve))
      : NOTHING_TO_WAIT_FOR;
    this.done = this.#run();
  }

  /** Made only when read: a run that comes back whole needs none. */
  get stdout(): ReadableStream<Uint8Array> {
    return this.#stdout ??= this.#stdoutStream();
  }

  /** A stopped guest's grace period is over: its answer is no longer waited for. */
  get gaveUp(): boolean {
    return this.#graceOver;
  }

  /** Stops the guest: the client went away. */
  cancel(): void {
    this.stop("cancelled");
  }

  /** Says where stdout is read from (the first said is the one kept). */
  #setOutput(output: RunOutput): void {
    if (this.#output) return;
    this.#output = output;
    this.#outputKnown?.(output);
  }

  /** Where stdout is read from, once the run knows. */
  #outputReady(): Promise<RunOutput> {
    if (this.#output) return Promise.resolve(this.#output);
    return this.#outputPromise ??= new Promise((resolve) => (this.#outputKnown = resolve));
  }

  /** Stops the guest (the first reason given is the one reported). */
  stop(reason: StopReason): void {
    if (this.#stopReason) return;
    this.#stopReason = reason;
    this.#interrupt?.();
    this.#markStopped?.("stopped");
  }

  /** Resolves when the run is stopped. */
  #whenStopped(): Promise<"stopped"> {
    if (this.#stopReason) return Promise.resolve("stopped");
    return this.#stopped ??= new Promise((resolve) => (this.#markStopped = resolve));
  }

  /** stdout as a byte stream: readers may bring their own buffer (BYOB) and reuse it. */
  #stdoutStream(): ReadableStream<Uint8Array> {
    const output = this.#outputReady();
    return new ReadableStream({
      type: "bytes",
      autoAllocateChunkSize: this.#parts.rings.capacity,
      async pull(controller) {
        const source = await output;
        const request = controller.byobRequest!;
        const view = request.view!;
        const n = await source.readInto(
          new Uint8Array(view.buffer, view.byteOffset, view.byteLength),
        );
        if (n > 0) request.respond(n);
        else {
          controller.close();
          request.respond(0);
          source.finished();
        }
      },
      async cancel() {
        (await output).cancel();
      },
    });
  }

  /** The run ended without its guest starting, or before it could say how its output goes. */
  #endedEarly(outcome: RunOutcome): RunOutcome {
    this.#setOutput(new BytesOutput(NO_BYTES));
    this.#setWhole({ stdout: NO_BYTES, outcome });
    return outcome;
  }

  async #run(): Promise<RunOutcome> {
    const spec = this.#spec;
    const { workers, groups, deadlines } = this.#parts;
    let entered = false;
    let deadline: Deadline | undefined;
    try {
      if (!moduleInfo(spec.module).preemptible) {
        // A guest that could not be stopped would keep its worker for good: never run one.
        return this.#endedEarly({
          exitCode: 0,
          failure: "the module was not compiled preemptible: the pool does not run it",
          stop: undefined,
          stderr: new Uint8Array(),
          truncated: false,
        });
      }
      if (!groups.tryEnter(spec.group)) await groups.enter(spec.group);
      entered = true;
      const runId = workers.nextRunId();
      deadline = deadlines.add(spec.timeoutMs, () => this.stop("timeout"));
      return await this.#queued(runId) ?? await this.#reserved(runId);
    } finally {
      // However the run ended, its body is no longer wanted and its group's share is free.
      if (deadline) deadlines.cancel(deadline);
      if (entered) groups.leave(spec.group);
      this.#stdinFinished();
      this.ended = true;
      this.#parts.ended(this);
    }
  }

  /** Waits for `waiting` unless the run is stopped first; `onLate` gets what came too late. */
  async #unlessStopped<T>(
    waiting: Promise<T>,
    onLate: (late: T) => void,
  ): Promise<T | "stopped"> {
    if (this.#stopReason) {
      waiting.then(onLate);
      return "stopped";
    }
    const first = await Promise.race([waiting, this.#whenStopped()]);
    if (first === "stopped") waiting.then(onLate);
    return first;
  }

  /** Runs the job on a worker reserved for it, sent as a message. */
  async #reserved(runId: number): Promise<RunOutcome> {
    const { workers } = this.#parts;
    const worker = await this.#unlessStopped(
      workers.acquire(),
      (late) => late && workers.release(late, 0),
    );
    if (worker === "stopped" || !worker) {
      // Never started: no guest touched anything of this run.
      return this.#endedEarly(stoppedOutcome(this.#stopReason ?? "server-stopping", this.#spec));
    }
    return await this.#messaged(worker, runId);
  }

  /**
   * Runs the job through the queue; undefined when it cannot go that way (a body to stream,
   * outbound HTTP, a job too large).
   */
  async #queued(runId: number): Promise<RunOutcome | undefined> {
    const spec = this.#spec;
    const stdin = spec.stdin;
    const { workers } = this.#parts;
    if (
      stdin instanceof ReadableStream || (stdin && stdin.length > spec.maxStdin) ||
      moduleInfo(spec.module).usesHttp || !workers.queueUsable
    ) return undefined;
    const queue = workers.queue;
    const moduleId = this.#parts.moduleId(spec.module);
    const slot = workers.trySlot() ?? await this.#unlessStopped(
      workers.slot(),
      (late) => late !== undefined && workers.unused(late),
    );
    if (slot === "stopped" || slot === undefined || this.#stopReason) {
      // Stopped before its job was posted (while it waited for its route's share, say): no
      // guest ever runs it.
      if (typeof slot === "number") workers.unused(slot);
      return this.#endedEarly(stoppedOutcome(this.#stopReason ?? "server-stopping", spec));
    }
    workers.announce(moduleId, spec.module);
    const mailbox = queue.mailbox(slot);
    const ring = queue.ring(slot);
    // The slot is the pool's between runs: nothing of an earlier run is left in its ring.
    ring.reset();
    const job = {
      entrypoint: spec.entrypoint,
      args: spec.args,
      env: spec.env,
      preopens: spec.preopens,
      maxOutput: spec.maxOutput,
      maxDescriptors: spec.maxDescriptors,
      outbound: spec.outbound,
      request: spec.request,
    };
    if (!workers.post(slot, runId, moduleId, job, stdin)) return undefined;
    this.#interrupt = () => {
      const taker = queue.withdraw(slot);
      if (taker === 0) {
        // No worker took it, and none will: the pool answers in its place.
        mailbox.answer(withdrawnReport(), undefined);
        workers.completions.changed();
        return;
      }
      // The slot's control block first (a stop that comes after the run ended reaches no
      // other run of the worker): a guest woken by the ring must find itself stopped.
      queue.control(slot).stop(runId);
      ring.interrupt();
      // It unwinds by itself, or within the grace period its worker is given up.
      this.#graceTimer = setTimeout(() => {
        this.#graceOver = true;
        workers.completions.changed();
      }, this.#parts.graceMs);
    };
    // Made once the output streams; a worker that fails answers through the slot too (see
    // Workers), so the answer (or the end of a stopped guest's grace period) is all there is
    // to wait for.
    let output: RingOutput | undefined;
    const completions = workers.completions;
    let state = await completions.watch(mailbox, POSTED, this);
    if (state === STREAMING) {
      output = new RingOutput(ring);
      this.#setOutput(output);
      this.#setWhole(undefined);
      state = await completions.watch(mailbox, STREAMING, this);
    }
    this.#interrupt = undefined;
    clearTimeout(this.#graceTimer);
    const stopped = this.#stopReason !== undefined;
    const report = state === GAVE_UP ? undefined : mailbox.report();
    if (report?.failure?.startsWith(WORKER_FAILED)) ring.close();
    // Output that went to the ring (the worker may have said so and ended before this thread
    // looked) and that the reader has not taken yet is copied out: the slot serves the next
    // run at once.
    if (report && !report.stdout) {
      output ??= new RingOutput(ring);
      await output.detach();
    }
    if (report) workers.finished(slot, moduleId, report.memoryBytes);
    else {
      // Its worker goes, and the slot with it: the lost guest may still touch it.
      const taker = workers.byId(queue.takerOf(slot));
      workers.lostSlot(moduleId);
      if (taker) this.#giveUp(taker);
    }
    if (stopped || !report) return this.#endedEarly(stoppedOutcome(this.#stopReason!, spec));
    const outcome = reportedOutcome(report);
    const stdout = report.stdout;
    if (stdout && !outcome.truncated) {
      this.#setOutput(new BytesOutput(stdout));
      this.#setWhole({ stdout, outcome });
    } else {
      // A cut output is streamed so that the response is cut the same way as a streamed one.
      this.#setOutput(stdout ? new BytesOutput(stdout) : output!);
      this.#setWhole(undefined);
    }
    return outcome;
  }

  /** Runs the job sent as a message, with stdin and stdout on rings of its own. */
  async #messaged(worker: PoolWorker, runId: number): Promise<RunOutcome> {
    const spec = this.#spec;
    const failed = this.#failure(worker);
    const rings = this.#parts.rings;
    const stdinBuffer = rings.take();
    const stdoutBuffer = rings.take();
    const stdinRing = new ByteRing(stdinBuffer);
    const stdoutRing = new ByteRing(stdoutBuffer);
    /**
     * Resolves once the guest has ended and nothing touches the rings: true, so they may
     * serve another run; false when its worker was given up and they never may.
     */
    let release!: (reusable: boolean) => void;
    const released = new Promise<boolean>((resolve) => (release = resolve));
    this.#setOutput(
      new RingOutput(
        stdoutRing,
        () => void released.then((reusable) => reusable && rings.give(stdoutBuffer)),
      ),
    );
    this.#setWhole(undefined);
    this.#interrupt = () => {
      // The control block first: a guest woken by its rings must find itself stopped.
      worker.control.stop(runId);
      this.#parts.workers.send(worker, { type: "stop", runId });
      stdinRing.interrupt();
      stdoutRing.interrupt();
    };
    const reported = new Promise<RunReport>((resolve) => {
      worker.worker.onmessage = (event: MessageEvent<RunReport>) => resolve(event.data);
    });
    this.#parts.workers.send(worker, this.#job(worker, runId, stdinBuffer, stdoutBuffer));
    const pump = pumpStdin(
      spec.stdin,
      stdinRing,
      spec.maxStdin,
      () => this.stop("body-too-large"),
    );
    pump.finished.then(this.#stdinFinished);
    const first: Answer = await Promise.race([reported, failed, this.#whenStopped()]);
    // Whatever of the body has not arrived yet is no longer wanted.
    pump.stop();
    // The worker is gone (its script did not even load, say): it will never close the stdout
    // ring, so it is closed on its behalf and the response ends with this report.
    if (first !== "stopped" && first.failure?.startsWith(WORKER_FAILED)) stdoutRing.close();
    const report = first === "stopped" ? await this.#unwound(reported, failed) : first;
    if (first !== "stopped") {
      this.#interrupt = undefined;
      stdinRing.abandon();
    }
    if (report) {
      // The stdin ring goes back once the body feeding has let go of it too.
      pump.finished.then(() => rings.give(stdinBuffer));
      release(true);
      this.#parts.workers.release(worker, report.memoryBytes);
    } else {
      release(false);
      this.#giveUp(worker);
    }
    if (first === "stopped") return stoppedOutcome(this.#stopReason!, spec);
    return reportedOutcome(first);
  }

  /** Gives up `worker`, whose stopped guest did not unwind in time (and what the run used). */
  #giveUp(worker: PoolWorker): void {
    this.#parts.workers.giveUp(
      worker,
      `a guest stopped (${this.#stopReason}) did not end within ${this.#parts.graceMs} ms`,
    );
  }

  /**
   * Waits for a stopped guest to unwind: its report, or undefined when it did not within the
   * grace period (its worker is then given up, and whatever the run used with it).
   */
  async #unwound(
    report: Promise<RunReport>,
    failed?: Promise<RunReport>,
  ): Promise<RunReport | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const grace = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.#parts.graceMs);
    });
    const ended = await Promise.race(failed ? [report, failed, grace] : [report, grace]);
    clearTimeout(timer);
    return ended;
  }

  /** The job for `worker`: the module goes along the first time that worker runs it. */
  #job(
    worker: PoolWorker,
    runId: number,
    stdin: SharedArrayBuffer,
    stdout: SharedArrayBuffer,
  ): RunJob {
    const spec = this.#spec;
    const moduleId = this.#parts.moduleId(spec.module);
    const job: RunJob = {
      type: "run",
      runId,
      moduleId,
      ...(worker.modules.has(moduleId) ? {} : {
        module: spec.module,
        reuse: reuseInfo(spec.module),
        component: componentParts(spec.module),
      }),
      entrypoint: spec.entrypoint,
      args: spec.args,
      env: spec.env,
      preopens: spec.preopens,
      stdin,
      stdout,
      maxOutput: spec.maxOutput,
      maxDescriptors: spec.maxDescriptors,
      maxStderr: MAX_STDERR,
      outbound: spec.outbound,
      request: spec.request,
    };
    worker.modules.add(moduleId);
    return job;
  }

  /** Resolves if `worker` fails by itself during this run (its script did not load, say). */
  #failure(worker: PoolWorker): Promise<RunReport> {
    return new Promise((resolve) => {
      worker.worker.onerror = (event) => {
        event.preventDefault();
        resolve(workerFailed(event.message));
      };
    });
  }
}
