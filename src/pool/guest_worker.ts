/**
 * The worker side of the pool: runs one guest at a time with stdin and stdout on byte rings,
 * then reports how it ended. A guest that overruns its deadline is stopped by terminating
 * this worker, which is why guests run here and not on the server's thread.
 * @module
 */

/// <reference lib="deno.worker" />

import { runGuest } from "../run/guest.ts";
import { ByteRing } from "./byte_ring.ts";
import { RingSink, RingSource } from "./ring_stdio.ts";
import { CollectingSink } from "../wasi/streams.ts";
import type { RunJob, RunReport } from "./protocol.ts";
import { lowerThreadPriority, POOL_WORKER_NICE } from "./thread_priority.ts";

// Guests here may spin until their timeout: the server's thread goes first for the cores.
lowerThreadPriority(POOL_WORKER_NICE);

const modules = new Map<number, WebAssembly.Module>();

self.onmessage = async (event: MessageEvent<RunJob>) => {
  const job = event.data;
  if (job.module) modules.set(job.moduleId, job.module);
  const module = modules.get(job.moduleId);
  const stdinRing = new ByteRing(job.stdin);
  const stdoutRing = new ByteRing(job.stdout);
  const stdout = new RingSink(stdoutRing, job.maxOutput);
  const stderr = new CollectingSink(job.maxStderr);
  const end = module
    ? await runGuest(module, job.entrypoint, {
      args: job.args,
      env: job.env,
      stdin: new RingSource(stdinRing),
      stdout,
      stderr,
      preopens: job.preopens,
    }, job.outbound)
    : { exitCode: 0, failure: "worker has no copy of the module", memoryBytes: 0 };
  stdoutRing.close();
  stdinRing.abandon();
  const report: RunReport = { ...end, stderr: stderr.bytes(), truncated: stdout.truncated };
  self.postMessage(report);
};
