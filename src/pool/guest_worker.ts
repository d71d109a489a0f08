/**
 * The worker side of the pool: runs one guest at a time with stdin and stdout on byte rings,
 * then reports how it ended. A guest is stopped through the worker's control block (see
 * control.ts): it traps by itself, this worker reports, and it serves the next run.
 * @module
 */

/// <reference lib="deno.worker" />

import { GuestRunner } from "../run/guest.ts";
import { Runners } from "./runners.ts";
import { ByteRing } from "./byte_ring.ts";
import { CHUNK_BYTES, RingSink, RingSource } from "./ring_stdio.ts";
import { CollectingSink } from "../wasi/streams.ts";
import type { PoolMessage, RunReport } from "./protocol.ts";
import { RunControl } from "./control.ts";
import { moduleInfo } from "../run/module_info.ts";
import type { StopSignal } from "../wasi/state.ts";
import { lowerThreadPriority, POOL_WORKER_NICE } from "./thread_priority.ts";

// Guests here may spin until they are stopped: the server's thread goes first for the cores.
lowerThreadPriority(POOL_WORKER_NICE);

/** A runner per module this worker was sent: each keeps its module's instance between runs. */
const runners = new Runners<GuestRunner>();
let control: RunControl | undefined;
/** Where a run's small writes are gathered (one run at a time: one buffer). */
const held = new Uint8Array(CHUNK_BYTES);
/** The run in progress, and what aborts its outbound requests when it is stopped. */
let current: { runId: number; abort: AbortController } | undefined;

self.onmessage = async (event: MessageEvent<PoolMessage>) => {
  const message = event.data;
  if (message.type === "control") {
    control = new RunControl(message.buffer);
    return;
  }
  if (message.type === "forget") {
    runners.forget(message.moduleIds);
    return;
  }
  if (message.type === "stop") {
    // Only a guest waiting on the network lets this message through while it runs.
    if (current?.runId === message.runId) current.abort.abort();
    return;
  }
  const job = message;
  if (job.module) runners.set(job.moduleId, new GuestRunner(job.module, job.reuse));
  const runner = runners.get(job.moduleId);
  const stopping = control!;
  stopping.begin(job.runId);
  const signal = stopping.signal(job.runId);
  current = { runId: job.runId, abort: new AbortController() };
  const stdinRing = new ByteRing(job.stdin);
  const stdoutRing = new ByteRing(job.stdout);
  // Small writes go out in chunks, and before every wait: a sleep, a read of the body (the
  // source below), a fuel refill long after the last write. A guest waiting on the network
  // (outbound HTTP, under JSPI) hands every write over at once instead.
  const hold = runner !== undefined && !moduleInfo(runner.module).usesHttp;
  const stdout = new RingSink(stdoutRing, signal, job.maxOutput, hold ? held : undefined);
  const stop: StopSignal = {
    check: signal.check,
    sleep(ms) {
      stdout.flush();
      signal.sleep(ms);
    },
  };
  const refuel = stopping.refuel(job.runId);
  const stderr = new CollectingSink(job.maxStderr);
  const end = runner
    ? await runner.run(
      job.entrypoint,
      {
        args: job.args,
        env: job.env,
        stdin: new RingSource(stdinRing, stop, () => stdout.flush()),
        stdout,
        stderr,
        preopens: job.preopens,
        stop,
        maxDescriptors: job.maxDescriptors,
      },
      job.outbound,
      {
        refuel: () => {
          stdout.flushIfDue();
          return refuel();
        },
        signal: current.abort.signal,
      },
    )
    : { exitCode: 0, failure: "worker has no copy of the module", memoryBytes: 0 };
  current = undefined;
  stdout.flush();
  stdoutRing.close();
  stdinRing.abandon();
  const report: RunReport = {
    ...end,
    stderr: stderr.bytes(),
    truncated: stdout.truncated,
    stopped: stopping.stopped(job.runId),
  };
  self.postMessage(report);
  // After the report: the server need not wait for this.
  runners.used(job.moduleId);
};
