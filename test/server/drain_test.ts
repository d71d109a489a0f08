/**
 * The graceful stop's portable core, in-process: what is in flight finishes, what comes after
 * is refused. (The signals and the listener are tested with the real process in
 * lifecycle_test.ts and knative_lifecycle_test.ts.)
 * @module
 */

import { assertEquals, assertOk } from "../_assert.ts";
import { Drain } from "../../src/server/lifecycle.ts";

const CLIENT = { remoteAddr: { transport: "tcp", hostname: "127.0.0.1" } };
const request = () => new Request("http://x/");

/** A promise and the function that settles it. */
function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

Deno.test("drain: a stop waits for the responses still being made, then resolves", async () => {
  const drain = new Drain();
  const sent = deferred();
  const pending = drain.handle(
    () => Promise.resolve(new Response("late")),
    request(),
    CLIENT,
    sent.promise,
  );
  assertOk(pending instanceof Promise);
  assertEquals(drain.inFlight, 1);
  let stopped = false;
  const stop = drain.stop().then(() => (stopped = true));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assertEquals(stopped, false, "still in flight");
  sent.resolve();
  await stop;
  assertEquals(drain.inFlight, 0);
});

Deno.test("drain: while stopping, every new request gets 503 without reaching the handler", async () => {
  const drain = new Drain();
  await drain.stop();
  let called = false;
  const response = drain.handle(
    () => {
      called = true;
      return new Response("no");
    },
    request(),
    CLIENT,
    Promise.resolve(),
  );
  assertOk(response instanceof Response);
  assertEquals([response.status, response.headers.get("connection")], [503, "close"]);
  await response.body?.cancel();
  assertEquals(called, false);
});

Deno.test("drain: a response returned at once is not counted in flight", async () => {
  const drain = new Drain();
  const response = drain.handle(
    () => new Response("now"),
    request(),
    CLIENT,
    new Promise(() => {}),
  );
  assertOk(response instanceof Response);
  assertEquals(drain.inFlight, 0);
  await drain.stop();
  await response.body?.cancel();
});

Deno.test("drain: a response that fails to be sent still leaves the count", async () => {
  const drain = new Drain();
  const sent = deferred();
  drain.handle(
    () => Promise.resolve(new Response("x")),
    request(),
    CLIENT,
    sent.promise.then(() => {
      throw new Error("connection reset");
    }),
  );
  const stop = drain.stop();
  sent.resolve();
  await stop;
  assertEquals(drain.inFlight, 0);
});
