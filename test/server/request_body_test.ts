import { assertEquals, assertOk } from "../_assert.ts";
import { BodyBudget, type BodyLimits, withKnownLength } from "../../src/server/request_body.ts";

const post = (body: BodyInit, headers: Record<string, string> = {}) =>
  new Request("http://x/", { method: "POST", body, headers });

/** A body without a declared length (sent chunked). */
const chunked = (text: string) => new Blob([text]).stream();

const limits = (overrides: Partial<BodyLimits> = {}): BodyLimits => ({
  maxBytes: 100,
  readWholeUpTo: 10,
  timeoutMs: 1000,
  budget: new BodyBudget(),
  ...overrides,
});

Deno.test("request body: none is length 0 and no stream", async () => {
  assertEquals(await withKnownLength(new Request("http://x/"), limits()), {
    stream: null,
    length: 0,
    held: 0,
  });
});

Deno.test("request body: a declared length up to the whole-body size is read first", async () => {
  const budget = new BodyBudget(1000);
  const body = await withKnownLength(
    post("hello", { "content-length": "5" }),
    limits({ budget }),
  );
  assertOk(body !== "too large" && body !== "too slow");
  assertEquals([body.stream, body.length, body.held], [null, 5, 5]);
  assertEquals(new TextDecoder().decode(body.bytes), "hello");
  assertEquals(budget.held, 5, "held until its run gives it back");
});

Deno.test("request body: a larger declared one streams, its length known", async () => {
  const body = await withKnownLength(post("x".repeat(50)), limits());
  assertOk(body !== "too large" && body !== "too slow");
  assertOk(body.stream instanceof ReadableStream);
  assertEquals([body.bytes, body.length], [undefined, 50]);
  assertEquals((await new Response(body.stream).text()).length, 50);
});

Deno.test("request body: a chunked one is read to learn its length, whole when small", async () => {
  const small = await withKnownLength(post(chunked("tiny")), limits());
  assertOk(small !== "too large" && small !== "too slow");
  assertEquals([small.length, new TextDecoder().decode(small.bytes)], [4, "tiny"]);
  const medium = await withKnownLength(post(chunked("y".repeat(50))), limits());
  assertOk(medium !== "too large" && medium !== "too slow" && medium.stream);
  assertEquals([medium.length, (await new Response(medium.stream).text()).length], [50, 50]);
});

Deno.test("request body: a chunked one over the cap is too large", async () => {
  assertEquals(await withKnownLength(post(chunked("z".repeat(101))), limits()), "too large");
});

Deno.test("request body: one that trickles past the route's timeout is too slow", async () => {
  const trickle = new ReadableStream<Uint8Array>({
    start: (controller) => controller.enqueue(new Uint8Array([1])),
  });
  const budget = new BodyBudget();
  const started = performance.now();
  const result = await withKnownLength(post(trickle), limits({ timeoutMs: 100, budget }));
  assertEquals(result, "too slow");
  assertOk(performance.now() - started >= 100);
  assertEquals(budget.held, 0, "the budget is given back");
});

Deno.test("request body: with the budget spent, bodies stream instead of being held", async () => {
  const budget = new BodyBudget(8);
  assertOk(budget.take(8));
  const body = await withKnownLength(post("hello", { "content-length": "5" }), limits({ budget }));
  assertOk(body !== "too large" && body !== "too slow");
  assertOk(body.stream instanceof ReadableStream, "streamed, not read whole");
  assertEquals([body.length, body.held], [5, 0]);
});
