import { assertEquals } from "../_assert.ts";
import { JobQueue } from "../../src/pool/job_queue.ts";
import { POSTED } from "../../src/pool/mailbox.ts";
import { BUSY, FREE, RESERVED, RETIRED, WorkerBlock } from "../../src/pool/worker_block.ts";
import { DEFAULT_OUTBOUND } from "../../src/outbound_http/names.ts";

const JOB = {
  entrypoint: "_start",
  args: ["/x"],
  env: [] as [string, string][],
  preopens: [],
  maxOutput: 1000,
  outbound: DEFAULT_OUTBOUND,
};

Deno.test("job queue: workers take posted jobs oldest first, each job once, naming the taker", () => {
  const pool = JobQueue.create(4);
  const worker = new JobQueue(pool.buffers);
  assertEquals(worker.take(1), -1);
  for (const slot of [2, 0, 3]) pool.post(slot, 10 + slot, 1, JOB, null, 1);
  assertEquals(pool.posted, 3);
  // Posted 2, then 0, then 3: taken in that order, whichever worker asks.
  assertEquals([worker.take(1), worker.take(2), worker.take(1), worker.take(2)], [2, 0, 3, -1]);
  assertEquals([pool.takerOf(2), pool.takerOf(0), pool.takerOf(3), pool.takerOf(1)], [1, 2, 1, 0]);
  assertEquals(worker.mailbox(0).job().runId, 10);
  assertEquals(pool.posted, 0);
  // A taken job cannot be withdrawn: the pool learns whom to stop.
  assertEquals(pool.withdraw(3), 1);
  pool.free(3);
  assertEquals(pool.takerOf(3), 0);
});

Deno.test("job queue: a job withdrawn before any worker took it is never taken", () => {
  const pool = JobQueue.create(2);
  const worker = new JobQueue(pool.buffers);
  pool.post(1, 5, 1, JOB, null, 1);
  assertEquals(pool.withdraw(1), 0);
  assertEquals(worker.take(7), -1);
  assertEquals(pool.posted, 0);
  // Freed and posted again, it is taken as any other.
  pool.free(1);
  pool.post(1, 6, 1, JOB, null, 1);
  assertEquals(pool.mailbox(1).state, POSTED);
  assertEquals(worker.take(7), 1);
  assertEquals(worker.mailbox(1).job().runId, 6);
});

Deno.test("job queue: a sleeping worker wakes for a job, for a message to any worker, or times out", () => {
  const pool = JobQueue.create(2);
  const worker = new JobQueue(pool.buffers);
  let seen = worker.events;
  assertEquals(worker.sleep(seen, 10), false);
  pool.post(0, 1, 1, JOB, null, 1);
  assertEquals(worker.sleep(seen, 10_000), true);
  seen = worker.events;
  pool.wakeAll();
  assertEquals(worker.sleep(seen, 10_000), true);
  assertEquals(pool.sleepers, 0);
});

Deno.test("worker block: the pool reserves only a free worker; a reserved one takes no job", () => {
  const pool = new WorkerBlock();
  const worker = new WorkerBlock(pool.buffer);
  assertEquals(worker.startJob(), true);
  assertEquals([pool.status, pool.reserve()], [BUSY, false]);
  worker.endJob();
  assertEquals([pool.reserve(), pool.status], [true, RESERVED]);
  assertEquals(worker.startJob(), false);
  assertEquals(worker.markRetired(), false);
  pool.unreserve();
  assertEquals(pool.status, FREE);
  pool.retire();
  assertEquals([worker.retiring, worker.markRetired(), pool.status], [true, true, RETIRED]);
  assertEquals([worker.startJob(), pool.reserve()], [false, false]);
  pool.sent();
  pool.close();
  assertEquals([worker.messages, worker.closing], [1, true]);
});

Deno.test("job queue: a stop reaches only the run in its slot, and a late one not the slot's next run", () => {
  const pool = JobQueue.create(2);
  const worker = new JobQueue(pool.buffers);
  pool.post(0, 7, 1, JOB, null, 1);
  pool.post(1, 8, 1, JOB, null, 1);
  pool.control(0).stop(7);
  assertEquals([worker.control(0).stopped(7), worker.control(1).stopped(8)], [true, false]);
  // The run in slot 0 ended; its stop came late: the slot's next job starts unstopped.
  pool.free(0);
  pool.control(0).stop(7);
  pool.post(0, 9, 1, JOB, null, 1);
  assertEquals([worker.control(0).stopped(7), worker.control(0).stopped(9)], [false, false]);
});
