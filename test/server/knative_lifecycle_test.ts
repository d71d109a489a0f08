import { assertEquals, assertIncludes, assertOk } from "../_assert.ts";
import { fixture, ROOT } from "../_fixtures.ts";
import { startServer } from "./_server.ts";
import { freePort } from "../_net.ts";
import { writeConfig as writeTempConfig } from "../_temp.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function writeConfig(): Promise<string> {
  return await writeTempConfig(
    `
[[module]]
route = "/hello"
module = "${ROOT}modules/hello.wasm"

[[module]]
route = "/slow"
module = "${fixture("slow.wasm")}"

[[module]]
route = "/bulk"
module = "${fixture("bulk.wat")}"

[[module]]
route = "/runaway"
module = "${fixture("runaway.wat")}"
timeout = 120
`,
    {},
    "wagi-knative-",
  );
}

const config = await writeConfig();

/** Starts the server the way the container does: PORT set, no -l, Knative's variables. */
async function startLikeKnative(extra: string[] = []) {
  const port = freePort();
  const server = await startServer(["-c", config, "-l", `127.0.0.1:${port}`, ...extra], {
    env: {
      PORT: String(port),
      K_SERVICE: "wagi",
      K_REVISION: "wagi-00001",
      K_CONFIGURATION: "wagi",
    },
  });
  return { server, base: `http://127.0.0.1:${port}` };
}

/** Polls /healthz as a readiness probe until it answers 200. */
async function waitReady(base: string): Promise<void> {
  for (let tries = 0; tries < 100; tries++) {
    const response = await fetch(`${base}/healthz`).catch(() => undefined);
    await response?.body?.cancel();
    if (response?.status === 200) return;
    await sleep(50);
  }
  throw new Error("never ready");
}

Deno.test("PORT alone makes the server listen on 0.0.0.0:$PORT and name its Knative revision", async () => {
  const port = freePort();
  const server = await startServer(["-c", config], {
    env: { PORT: String(port), K_SERVICE: "wagi", K_REVISION: "wagi-00001", K_CONFIGURATION: "c" },
    defaultListen: false,
  });
  try {
    assertIncludes(
      server.output().stdout,
      `Ready: serving on http://0.0.0.0:${port} (Knative service wagi, revision wagi-00001, configuration c)`,
    );
    await waitReady(`http://127.0.0.1:${port}`);
  } finally {
    await server.stop();
  }
});

Deno.test("SIGTERM under load: every request sent before it completes, readiness turns 503, exit 0", async () => {
  const { server, base } = await startLikeKnative(["--drain-timeout", "10"]);
  await waitReady(base);
  const sent: { path: string; response: Promise<Response> }[] = [];
  let stopped = false;
  const load = (async () => {
    for (let i = 0; !stopped; i++) {
      const path = i % 5 === 0 ? "/slow" : "/hello";
      sent.push({ path, response: fetch(`${base}${path}`) });
      await sleep(20);
    }
  })();
  await sleep(700);
  stopped = true;
  await load;
  // "Sent" means the server has it: every response has begun (a fetch resolves with the
  // headers). The slow ones (1 s) are still streaming their body when the signal comes.
  const responses = await Promise.all(sent.map((s) => s.response));
  const signalledAt = performance.now();
  server.child.kill("SIGTERM");
  await sleep(100);
  const readiness = await fetch(`${base}/healthz`).then(async (r) => {
    await r.body?.cancel();
    return r.status;
  }).catch(() => "refused");
  const results = await Promise.all(
    responses.map(async (r, i) => ({ path: sent[i].path, status: r.status, body: await r.text() })),
  );
  const status = await server.stop();
  const exitedAfter = performance.now() - signalledAt;

  assertEquals(readiness, 503, "readiness fails while draining");
  assertOk(results.some((r) => r.path === "/slow"), "some requests were slow");
  for (const result of results) {
    assertEquals(result.status, 200, result.path);
    assertEquals(result.body, result.path === "/slow" ? "first\nsecond\n" : "hello world\n");
  }
  assertEquals(status.code, 0);
  assertOk(exitedAfter < 10_000, `exited after ${exitedAfter} ms, within the drain timeout`);
  assertOk(exitedAfter >= 500, "it waited for the slow requests");
});

Deno.test("SIGTERM while a large response waits for a slow client: it is sent whole, exit 0", async () => {
  const { server, base } = await startLikeKnative();
  await waitReady(base);
  // Until the module runs on the server's thread its output is streamed from the pool (and
  // chunked); then the response is made at once, with a length: that case is the one here.
  for (let tries = 0; tries < 100; tries++) {
    const response = await fetch(`${base}/bulk`);
    await response.body?.cancel();
    if (response.headers.has("content-length")) break;
    await sleep(50);
  }
  const port = Number(new URL(base).port);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode("GET /bulk HTTP/1.1\r\nHost: x\r\n\r\n"));
  // The client reads nothing until the server has been told to stop.
  await sleep(300);
  server.child.kill("SIGTERM");
  await sleep(300);
  // The server closes the connection once it has stopped: read to the end.
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(64 * 1024);
  let text = "";
  for (let n; (n = await conn.read(buffer).catch(() => null)) !== null;) {
    text += decoder.decode(buffer.subarray(0, n), { stream: true });
  }
  conn.close();
  const [head, body] = text.split("\r\n\r\n");
  assertIncludes(head.toLowerCase(), "content-length: 1000000");
  assertEquals(body.length, 1_000_000);
  assertEquals((await server.stop()).code, 0);
});

Deno.test("a module that never finishes: the process exits 0 at the drain timeout", async () => {
  const { server, base } = await startLikeKnative(["--drain-timeout", "1.5"]);
  await waitReady(base);
  const stuck = fetch(`${base}/runaway`).then((r) => r.status).catch(() => "failed");
  await sleep(300);
  const signalledAt = performance.now();
  server.child.kill("SIGTERM");
  const status = await server.stop();
  const exitedAfter = performance.now() - signalledAt;
  assertEquals(status.code, 0);
  assertOk(exitedAfter >= 1400, `waited for the drain timeout (${exitedAfter} ms)`);
  assertOk(exitedAfter < 4000, `did not wait much longer (${exitedAfter} ms)`);
  assertEquals(await stuck, 503, "the straggler is told the server is shutting down");
  assertIncludes(server.output().stderr, "drain timeout of 1500 ms passed");
});
