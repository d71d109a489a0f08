/**
 * Turning a running guest's output into a response, in-process with scripted runs.
 * @module
 */

import { assertEquals, assertIncludes, assertOk } from "../_assert.ts";
import { respond } from "../../src/server/respond.ts";
import { CgiOutputParser } from "../../src/cgi/response.ts";
import { Spooler } from "../../src/server/spool.ts";
import type { Logger } from "../../src/server/logger.ts";
import { FakeExecutor, outcome, type Script } from "./_fake_executor.ts";
import type { RunSpec } from "../../src/run/contract.ts";

const lines: string[] = [];
const logger: Logger = {
  info: (m) => lines.push(m),
  warn: (m) => lines.push(m),
  error: (m) => lines.push(m),
};

/** The response to a run that follows `script`. */
function responseTo(script: Script, maxResponseBytes = 1024 * 1024) {
  const executor = new FakeExecutor(() => script);
  const execution = executor.run({} as RunSpec);
  return {
    executor,
    response: respond(execution, "GET /test", {
      logger,
      maxResponseBytes,
      parser: new CgiOutputParser(),
      spooler: new Spooler(),
    }),
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("respond: a header block split across writes is put together; the body follows", async () => {
  const { response } = responseTo({
    chunks: ["Content-", "Type: text/pl", "ain\nX-A: 1\n", "\nbo", "dy"],
  });
  const answer = await response;
  assertEquals(answer.status, 200);
  assertEquals(answer.headers.get("x-a"), "1");
  assertEquals(await answer.text(), "body");
});

Deno.test("respond: a guest that fails right after its headers still gets a failure status", async () => {
  const { response } = responseTo({
    chunks: ["Content-Type: text/plain\n\npartial"],
    outcome: outcome({ failure: "trap: unreachable" }),
  });
  const answer = await response;
  assertEquals(answer.status, 500);
  await answer.body?.cancel();
  assertOk(lines.some((l) => l.includes("GET /test: trap: unreachable")));
});

Deno.test("respond: a guest still running after its headers streams; a later failure cuts the body", async () => {
  async function* chunks() {
    yield "Content-Type: text/plain\n\nfirst\n";
    await sleep(300);
    yield "second\n";
  }
  const { response } = responseTo({
    chunks: chunks(),
    outcome: outcome({ stop: "timeout", failure: "timed out after 300 ms" }),
  });
  const answer = await response;
  assertEquals(answer.status, 200, "the status went out before the guest ended");
  const reader = answer.body!.getReader();
  let text = "";
  let failed: unknown;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
  } catch (error) {
    failed = error;
  }
  assertEquals(text, "first\nsecond\n");
  assertIncludes(String(failed), "response cut off");
  assertOk(lines.some((l) => l.includes("after 13 body bytes were sent; response cut off")));
});

Deno.test("respond: output with no header block is a 500 with WAGI's reason", async () => {
  const { response } = responseTo({ chunks: ["just a body"] });
  const answer = await response;
  assertEquals(answer.status, 500);
  assertIncludes(await answer.text(), "content-type");
});

Deno.test("respond: a bad header stops the guest and answers with the error", async () => {
  const { response, executor } = responseTo({
    chunks: (function* () {
      yield "Status: nonsense\n\n";
      yield "more";
    })(),
  });
  const answer = await response;
  assertEquals(answer.status, 502);
  await answer.body?.cancel();
  assertOk(executor.cancelled.has(0), "the guest was stopped");
});

Deno.test("respond: a streamed response drops the module's Content-Length and logs a wrong one", async () => {
  async function* chunks() {
    yield "Content-Type: text/plain\nContent-Length: 3\n\nfirst ";
    await sleep(150);
    yield "second";
  }
  const { response } = responseTo({ chunks: chunks() });
  const answer = await response;
  assertEquals(answer.headers.get("content-length"), null, "streamed: no length promised");
  assertEquals(await answer.text(), "first second");
  assertOk(lines.some((l) => l.includes("declared Content-Length 3 but wrote 12 body bytes")));
});

Deno.test("respond: while the upload lasts, a response starts when the rest of its declared body fits in the body budget, and waits for the upload when not", async () => {
  const { BodyBudget } = await import("../../src/server/request_body.ts");
  const started = async (budgetBytes: number, declared: number | undefined) => {
    let uploadEnds!: () => void;
    const stdinDone = new Promise<void>((resolve) => (uploadEnds = resolve));
    // A guest writing on until its upload has ended (as one reading it to the end would).
    async function* chunks() {
      yield "Content-Type: text/plain\n\nhello";
      await stdinDone;
      yield "!";
    }
    const executor = new FakeExecutor(() => ({ chunks: chunks() }));
    const execution = { ...executor.run({} as RunSpec), stdinDone };
    const budget = new BodyBudget(budgetBytes);
    const spooler = new Spooler();
    const response = respond(execution, "POST /test", {
      logger,
      maxResponseBytes: 1024,
      parser: new CgiOutputParser(),
      spooler,
      bodyBudget: budget,
    }, declared);
    const early = await Promise.race([response.then(() => true), sleep(300).then(() => false)]);
    const heldMeanwhile = budget.held;
    uploadEnds();
    assertEquals(await (await response).text(), "hello!");
    await execution.done;
    await sleep(0);
    await spooler.close();
    return { early, heldMeanwhile, heldAfter: budget.held };
  };
  // The rest of the upload (Deno reads it into memory once the response starts) is held in
  // the budget until the upload and the run have ended.
  assertEquals(await started(1000, 600), { early: true, heldMeanwhile: 600, heldAfter: 0 });
  assertEquals(await started(1000, 2000), { early: false, heldMeanwhile: 0, heldAfter: 0 });
  // A body of unknown length (chunked): how much Deno would read is not bounded.
  assertEquals(await started(1000, undefined), { early: false, heldMeanwhile: 0, heldAfter: 0 });
});
