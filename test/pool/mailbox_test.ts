import { assertEquals } from "../_assert.ts";
import { DONE, IDLE, Mailbox, POSTED, STREAMING } from "../../src/pool/mailbox.ts";
import { Completions, CompletionSignal } from "../../src/pool/completions.ts";
import { DEFAULT_OUTBOUND } from "../../src/outbound_http/names.ts";

const JOB = {
  entrypoint: "_start",
  args: ["/echo", "a b"],
  env: [["QUERY_STRING", "q=é"]] as [string, string][],
  preopens: [{ guestPath: "/data", hostPath: "/tmp/x", readOnly: true }],
  maxOutput: 1000,
  outbound: DEFAULT_OUTBOUND,
};

Deno.test("mailbox: a job and its body reach the worker side as posted", () => {
  const pool = new Mailbox();
  const worker = new Mailbox(pool.buffer);
  assertEquals(pool.state, IDLE);
  assertEquals(pool.post(7, 3, JOB, new TextEncoder().encode("body")), true);
  assertEquals(worker.state, POSTED);
  const job = worker.job();
  assertEquals({ ...job, stdin: new TextDecoder().decode(job.stdin!) }, {
    ...JOB,
    runId: 7,
    moduleId: 3,
    stdin: "body",
  });
  pool.clear();
  assertEquals(pool.post(8, 3, JOB, null), true);
  assertEquals(worker.job().stdin, null);
});

Deno.test("mailbox: a job too large for it is refused, to go as a message", () => {
  const pool = new Mailbox();
  assertEquals(pool.post(1, 1, JOB, new Uint8Array(64 * 1024)), false);
  assertEquals(pool.state, IDLE);
});

Deno.test("mailbox: the answer carries the outcome, stderr and a whole stdout, or says it streamed", () => {
  const pool = new Mailbox();
  const worker = new Mailbox(pool.buffer);
  pool.post(1, 1, JOB, null);
  worker.answer({
    exitCode: 3,
    failure: "trap: unreachable",
    stderr: new TextEncoder().encode("oops\n"),
    truncated: true,
    stopped: true,
    memoryBytes: 2 ** 33,
  }, new TextEncoder().encode("Content-Type: text/plain\n\nhi"));
  assertEquals(pool.state, DONE);
  const report = pool.report();
  assertEquals({
    ...report,
    stderr: new TextDecoder().decode(report.stderr),
    stdout: new TextDecoder().decode(report.stdout),
  }, {
    exitCode: 3,
    failure: "trap: unreachable",
    stderr: "oops\n",
    truncated: true,
    stopped: true,
    memoryBytes: 2 ** 33,
    stdout: "Content-Type: text/plain\n\nhi",
  });
  pool.clear();
  pool.post(2, 1, JOB, null);
  worker.streaming();
  assertEquals(pool.state, STREAMING);
  worker.answer({
    exitCode: 0,
    stderr: new Uint8Array(),
    truncated: false,
    stopped: false,
    memoryBytes: 65536,
  }, undefined);
  const streamed = pool.report();
  assertEquals([streamed.stdout, streamed.failure, streamed.exitCode], [undefined, undefined, 0]);
});

Deno.test("completions: a run learns its mailbox moved on, each change signalled once by its worker", async () => {
  const completions = new Completions();
  const signal = new CompletionSignal(completions.buffer);
  // An Atomics wait does not keep the event loop alive (in the server, its listener does).
  const alive = setInterval(() => {}, 1000);
  const boxes = [new Mailbox(), new Mailbox()];
  for (const box of boxes) box.post(1, 1, JOB, null);
  const watched = boxes.map((box) => completions.watch(box, POSTED));
  const answer = (box: Mailbox) =>
    new Mailbox(box.buffer).answer({
      exitCode: 0,
      stderr: new Uint8Array(),
      truncated: false,
      stopped: false,
      memoryBytes: 0,
    }, new Uint8Array());
  answer(boxes[1]);
  signal.signal();
  assertEquals(await watched[1], DONE);
  new Mailbox(boxes[0].buffer).streaming();
  signal.signal();
  assertEquals(await watched[0], STREAMING);
  // A mailbox already moved on resolves at once; a change made on the pool's own thread (a
  // failed worker's run answered there) is signalled by the pool.
  assertEquals(await completions.watch(boxes[1], POSTED), DONE);
  const streaming = completions.watch(boxes[0], STREAMING);
  answer(boxes[0]);
  completions.changed();
  assertEquals(await streaming, DONE);
  clearInterval(alive);
});
