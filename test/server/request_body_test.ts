import { assertEquals, assertOk } from "../_assert.ts";
import { withKnownLength } from "../../src/server/request_body.ts";

const post = (body: BodyInit, headers: Record<string, string> = {}) =>
  new Request("http://x/", { method: "POST", body, headers });

/** A body without a declared length (sent chunked). */
const chunked = (text: string) => new Blob([text]).stream();

Deno.test("request body: none is length 0 and no stream", async () => {
  assertEquals(await withKnownLength(new Request("http://x/"), 100, 10), {
    stream: null,
    length: 0,
  });
});

Deno.test("request body: a declared length up to the whole-body size is read first", async () => {
  const body = await withKnownLength(post("hello", { "content-length": "5" }), 100, 10);
  assertOk(body !== "too large");
  assertEquals([body.stream, body.length], [null, 5]);
  assertEquals(new TextDecoder().decode(body.bytes), "hello");
});

Deno.test("request body: a larger declared one streams, its length known", async () => {
  const body = await withKnownLength(post("x".repeat(50)), 100, 10);
  assertOk(body !== "too large");
  assertOk(body.stream instanceof ReadableStream);
  assertEquals([body.bytes, body.length], [undefined, 50]);
  assertEquals((await new Response(body.stream).text()).length, 50);
});

Deno.test("request body: a chunked one is read to learn its length, whole when small", async () => {
  const small = await withKnownLength(post(chunked("tiny")), 100, 10);
  assertOk(small !== "too large");
  assertEquals([small.length, new TextDecoder().decode(small.bytes)], [4, "tiny"]);
  const medium = await withKnownLength(post(chunked("y".repeat(50))), 100, 10);
  assertOk(medium !== "too large" && medium.stream);
  assertEquals([medium.length, (await new Response(medium.stream).text()).length], [50, 50]);
});

Deno.test("request body: a chunked one over the cap is too large", async () => {
  assertEquals(await withKnownLength(post(chunked("z".repeat(101))), 100, 10), "too large");
});
