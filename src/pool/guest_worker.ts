/**
 * The worker side of the pool: runs one guest at a time and reports how it ended. A run comes
 * either through the pool's job queue (see job_queue.ts: no request body to stream), taken by
 * whichever worker is free first, its stdout held back and answered whole when small, else
 * streamed through its slot's ring; or as a message to this worker (reserved for it), with
 * stdin and stdout on rings of its own.
 * A guest is stopped through its slot's control block, or the worker's for a run that came as a
 * message (see control.ts): it traps by itself,
 * this worker reports, and it serves the next run.
 * @module
 */

/// <reference lib="deno.worker" />

import { GuestRunner } from "../run/guest.ts";
import { LazyComponentRunner } from "../component/lazy_runner.ts";
import { Runners } from "./runners.ts";
import { ByteRing } from "./byte_ring.ts";
import { CHUNK_BYTES, RingSink, RingSource } from "./ring_stdio.ts";
import { BytesSource, CollectingSink, NO_BYTES } from "../wasi/streams.ts";
import type { InputSource } from "../wasi/descriptors.ts";
import type { ModuleMessage, PoolMessage, RunJob, RunReport } from "./protocol.ts";
import { MAX_STDERR } from "../run/contract.ts";
import { RunControl } from "./control.ts";
import type { MailedJob } from "./mailbox.ts";
import { JobQueue } from "./job_queue.ts";
import { WorkerBlock } from "./worker_block.ts";
import { CompletionSignal } from "./completions.ts";
import { moduleInfo } from "../run/module_info.ts";
import type { StopSignal } from "../wasi/state.ts";
import { lowerThreadPriority, POOL_WORKER_NICE } from "./thread_priority.ts";

// Guests here may spin until they are stopped: the server's thread goes first for the cores.
lowerThreadPriority(POOL_WORKER_NICE);

/** A runner per module this worker was sent: each keeps its module's instance between runs. */
const runners = new Runners<GuestRunner | LazyComponentRunner>();

/** The runner for a module sent to this worker: a component's, or a WAGI module's. */
function runnerFor(message: {
  module: WebAssembly.Module;
  reuse?: ModuleMessage["reuse"];
  component?: ModuleMessage["component"];
}): GuestRunner | LazyComponentRunner {
  return message.component
    ? new LazyComponentRunner(message.module, message.component)
    : new GuestRunner(message.module, message.reuse);
}
let control: RunControl | undefined;
/** Where a run's small writes are gathered (one run at a time: one buffer). */
const held = new Uint8Array(CHUNK_BYTES);
/** The run in progress, and what aborts its outbound requests when it is stopped. */
let current: { runId: number; abort: AbortController } | undefined;

/** One run, whichever way it came. */
interface Run extends MailedJob {
  runId: number;
  moduleId: number;
  maxStderr: number;
  /** stdin for the guest, given its stop signal and what hands its held output over. */
  stdin(stop: StopSignal, flushStdout: () => void): InputSource;
  stdout: ByteRing;
  /** Called before the first stdout bytes go into the ring. */
  streams?: () => void;
  /** How the run is stopped: its slot's control block, or this worker's. */
  control: RunControl;
}

/** Runs the guest of `run`; stdout is left held when none of it went to the ring yet. */
async function runJob(run: Run): Promise<{ report: RunReport; stdout: RingSink }> {
  const runner = runners.get(run.moduleId);
  const stopping = run.control;
  stopping.begin(run.runId);
  const signal = stopping.signal(run.runId);
  current = { runId: run.runId, abort: new AbortController() };
  // Small writes go out in chunks, and before every wait: a sleep, a read of the body (the
  // source below), a fuel refill long after the last write. A guest waiting on the network
  // (outbound HTTP, under JSPI) hands every write over at once instead.
  const hold = runner !== undefined && !moduleInfo(runner.module).usesHttp &&
    !(runner instanceof LazyComponentRunner && runner.parts.async);
  const stdout = new RingSink(
    run.stdout,
    signal,
    run.maxOutput,
    hold ? held : undefined,
    undefined,
    run.streams,
  );
  const stop: StopSignal = {
    check: signal.check,
    sleep(ms) {
      stdout.flush();
      signal.sleep(ms);
    },
  };
  const refuel = stopping.refuel(run.runId);
  const stderr = new CollectingSink(run.maxStderr);
  const wasi = {
    args: run.args,
    env: run.env,
    stdin: run.stdin(stop, () => stdout.flush()),
    stdout,
    stderr,
    preopens: run.preopens,
    stop,
    maxDescriptors: run.maxDescriptors,
  };
  const guestControl = {
    refuel: () => {
      stdout.flushIfDue();
      return refuel();
    },
    signal: current.abort.signal,
  };
  const end = !runner
    ? { exitCode: 0, failure: "worker has no copy of the module", memoryBytes: 0 }
    : runner instanceof LazyComponentRunner
    ? await runner.run(wasi, guestControl, run.request, run.outbound)
    : await runner.run(run.entrypoint, wasi, run.outbound, guestControl);
  current = undefined;
  const report: RunReport = {
    ...end,
    stderr: stderr.bytes(),
    truncated: stdout.truncated,
    stopped: stopping.stopped(run.runId),
  };
  return { report, stdout };
}

/**
 * How long the worker sleeps at most before its event loop gets a turn. The pool wakes the
 * workers when it sends one a message or closes it: this is only a safety net.
 */
const SLEEP_MS = 10_000;

/** Messages read so far (the pool counts those it sent: see WorkerBlock.sent). */
let messagesRead = 0;
/** The run that came as a message, while it is in progress. */
let messageRun: Promise<void> | undefined;
/** This worker's id, its block, the queue and how to tell the pool a slot changed. */
let workerId = 0;
let block: WorkerBlock | undefined;
let queue: JobQueue | undefined;
let completions: CompletionSignal | undefined;
/** A slot taken before the message bringing its module was read: run first. */
let pendingSlot = -1;
let serving = false;

/**
 * Serves the queue: takes the posted jobs one after another, sleeping when there are none.
 * Returns to the event loop whenever it is needed: messages are waiting (they are read only
 * then, and reading one serves the queue again), a message's run is in progress (its guest may
 * wait on the network), the pool closed or retired this worker, or it slept for long.
 */
async function serveQueue(): Promise<void> {
  if (serving || !block || !queue) return;
  serving = true;
  try {
    for (;;) {
      // Read first: whatever the pool does after this (posts a job, sends a message, closes
      // or retires this worker, ends its reservation) is an event, and the sleep below does
      // not block past it.
      const seen = queue.events;
      if (messageRun || block.messages !== messagesRead || block.closing) {
        queue.passOn();
        return;
      }
      if (pendingSlot !== -1) {
        const slot = pendingSlot;
        pendingSlot = -1;
        await runSlot(queue, slot);
        continue;
      }
      if (block.retiring && block.markRetired()) {
        completions!.signal();
        queue.passOn();
        return;
      }
      // The status is touched only when there is a job to take: a worker with none stays free
      // for the pool to reserve.
      if (queue.posted > 0 && block.startJob()) {
        const slot = queue.take(workerId);
        if (slot !== -1) {
          if (runners.get(queue.mailbox(slot).moduleId) || block.messages === messagesRead) {
            await runSlot(queue, slot);
          } else {
            // The message bringing its module was sent before the job was posted: read it
            // first (the worker stays busy meanwhile, so the pool cannot reserve it).
            pendingSlot = slot;
          }
          continue;
        }
        // Others took them first. A reservation tried meanwhile failed: the pool tries again
        // when told of a change.
        block.endJob();
        completions!.signal();
      }
      // No job, or it is reserved: then its message is on its way, and jobs posted meanwhile
      // wake every sleeper (see JobQueue.post), so they are for the others.
      if (!queue.sleep(seen, SLEEP_MS)) {
        setTimeout(serveQueue, 0);
        return;
      }
    }
  } finally {
    serving = false;
  }
}

/** Runs the job taken from `slot`, answers in it, and is free again. */
async function runSlot(queue: JobQueue, slot: number): Promise<void> {
  const mailbox = queue.mailbox(slot);
  const ring = queue.ring(slot);
  const job = mailbox.job();
  const body = job.stdin;
  const { report, stdout } = await runJob({
    ...job,
    maxStderr: MAX_STDERR,
    stdin: () => new BytesSource(body ?? NO_BYTES),
    stdout: ring,
    control: queue.control(slot),
    streams: () => {
      mailbox.streaming();
      completions!.signal();
    },
  });
  const whole = stdout.unsent();
  if (!whole) {
    stdout.flush();
    ring.close();
  }
  mailbox.answer(report, whole);
  // Free before the pool hears of the answer: then it may reserve this worker.
  block!.endJob();
  completions!.signal();
  runners.used(job.moduleId);
}

self.onmessage = (event: MessageEvent<PoolMessage>) => {
  const message = event.data;
  if (message.type === "control") {
    control = new RunControl(message.buffer);
    workerId = message.workerId;
    block = new WorkerBlock(message.block);
    queue = new JobQueue(message.queue);
    completions = new CompletionSignal(message.completions);
    for (const held of message.modules) hold(held);
    block.ready();
  } else {
    messagesRead++;
    if (message.type === "module") hold(message);
    else if (message.type === "forget") runners.forget(message.moduleIds);
    else if (message.type === "stop") {
      // Only a guest waiting on the network lets this message through while it runs.
      if (current?.runId === message.runId) current.abort.abort();
    } else {
      // The worker takes no job from the queue while this run is in progress.
      messageRun = runMessaged(message).finally(() => {
        messageRun = undefined;
        // Still reserved: the pool ends that once it has the report, and wakes it.
        serveQueue();
      });
    }
  }
  serveQueue();
};

/** Keeps the module of `message` (a runner for it), unless it holds it already. */
function hold(message: ModuleMessage): void {
  if (!runners.get(message.moduleId)) {
    runners.set(message.moduleId, runnerFor(message));
  }
}

/** Runs a job that came as a message, with stdin and stdout on rings of its own. */
async function runMessaged(job: RunJob): Promise<void> {
  if (job.module) runners.set(job.moduleId, runnerFor({ ...job, module: job.module }));
  const stdinRing = new ByteRing(job.stdin);
  const stdoutRing = new ByteRing(job.stdout);
  const { report, stdout } = await runJob({
    ...job,
    stdin: (stop, flushStdout) => new RingSource(stdinRing, stop, flushStdout),
    stdout: stdoutRing,
    control: control!,
  });
  stdout.flush();
  stdoutRing.close();
  stdinRing.abandon();
  self.postMessage(report);
  // After the report: the server need not wait for this.
  runners.used(job.moduleId);
}
