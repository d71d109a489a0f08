import { assertEquals, assertIncludes } from "../_assert.ts";
import { startServer } from "./_server.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("SIGTERM lets an in-flight request finish, then the process exits 0", async () => {
  const server = await startServer(["-c", "modules/modules.toml"]);
  const encoder = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
  controller.enqueue(encoder.encode("first half, "));
  // The request is in flight: its headers are sent, its body is still arriving.
  const pending = fetch(
    `${server.url}/env/slow`,
    { method: "POST", body, duplex: "half" } as
      & RequestInit
      & { duplex: "half" },
  );
  await sleep(300);
  server.child.kill("SIGTERM");
  await sleep(300);
  const during = await fetch(`${server.url}/hello`);
  assertEquals(during.status, 503, "new requests are refused while draining");
  await during.body?.cancel();
  const health = await fetch(`${server.url}/healthz`);
  assertEquals(health.status, 503, "readiness fails while draining");
  await health.body?.cancel();
  controller.enqueue(encoder.encode("second half"));
  controller.close();

  const response = await pending;
  assertEquals(response.status, 200);
  const text = await response.text();
  assertIncludes(text, "### body\nfirst half, second half");
  const status = await server.stop();
  assertEquals(status.code, 0);
  assertIncludes(server.output().stderr, "stopping: refusing new requests, finishing 1 in flight");
});

Deno.test("after SIGTERM with nothing in flight the process exits 0 and refuses connections", async () => {
  const server = await startServer(["-c", "modules/modules.toml"]);
  assertEquals(await (await fetch(`${server.url}/hello`)).text(), "hello world\n");
  const status = await server.stop();
  assertEquals(status.code, 0);
  let refused = false;
  try {
    await fetch(`${server.url}/hello`);
  } catch {
    refused = true;
  }
  assertEquals(refused, true);
});

Deno.test("the temp log dir chosen at start goes with the server when nothing was logged", async () => {
  const server = await startServer(["-c", "modules/modules.toml"]);
  assertEquals(await (await fetch(`${server.url}/hello`)).text(), "hello world\n");
  const dir = server.output().stderr.match(/module stderr goes to (\S+)/)![1];
  assertEquals(Deno.statSync(dir).isDirectory, true);
  assertEquals((await server.stop()).code, 0);
  assertEquals(await Deno.stat(dir).then(() => "still there", () => "gone"), "gone");
});
