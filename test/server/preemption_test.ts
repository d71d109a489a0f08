/**
 * Guests that would not end are stopped for real: at the deadline, on a client that leaves and
 * at the drain, each request is answered and the server process is idle again afterwards (its
 * CPU time and its thread count, read from /proc), with the other routes answering throughout.
 * @module
 */

import { assertEquals, assertIncludes, assertOk } from "../_assert.ts";
import { fixture, ROOT } from "../_fixtures.ts";
import { startServer } from "./_server.ts";
import { writeConfig } from "../_temp.ts";
import { IDLE, idleLoad, threads } from "../_proc.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Requests the slow upstream holds: each answers when released. */
const held: (() => void)[] = [];

/** A slow upstream for outbound HTTP: it answers only when the test releases it. */
const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async () => {
  await new Promise<void>((resolve) => held.push(resolve));
  return new Response("late");
});

const config = await writeConfig(`
[[module]]
route = "/spin"
module = "${fixture("spin.wasm")}"
timeout = 0.5

[[module]]
route = "/spin-long"
module = "${fixture("spin.wasm")}"
timeout = 60

[[module]]
route = "/sleepy"
module = "${fixture("sleepy.wasm")}"
timeout = 0.5

[[module]]
route = "/cat"
module = "${fixture("cat.wasm")}"
timeout = 0.5

[[module]]
route = "/flood"
module = "${fixture("flood.wasm")}"
timeout = 0.5

[[module]]
route = "/fetch"
module = "${ROOT}modules/http_example.wasm"
allowed_hosts = ["http://127.0.0.1"]
timeout = 0.5

[[module]]
route = "/hello"
module = "${ROOT}modules/hello.wasm"
`);

/**
 * Starts the server with four warm workers, and reads its idle thread count. One server
 * isolate: another would start its share of the pool when its first run needs it, after the
 * count (several isolates: test/cli/server_isolates_test.ts).
 */
async function start(extra: string[] = []) {
  const server = await startServer([
    ...["-c", config, "--servers", "1", "--workers", "4", "--max-concurrency", "4"],
    ...extra,
  ]);
  const pid = server.child.pid;
  // The modules prepared for the server's thread, and every warm worker up and idle: they
  // start when a run first needs the pool, as one that sleeps does.
  await fetch(`${server.url}/hello`).then((r) => r.text());
  await fetch(`${server.url}/sleepy`).then((r) => r.body?.cancel());
  while (!server.output().stderr.includes("modules ready to run on the server's thread")) {
    await sleep(50);
  }
  await sleep(500);
  return { server, pid, idleThreads: await threads(pid) };
}

Deno.test("runaway guests, several at once and many in a row, are stopped for good", async () => {
  const { server, pid, idleThreads } = await start();
  try {
    const hello = async () => {
      const response = await fetch(`${server.url}/hello`);
      return [response.status, await response.text()];
    };
    // Several at once (the route may use two of the four workers), with hellos beside them.
    const together = await Promise.all(
      Array.from({ length: 6 }, () => fetch(`${server.url}/spin`).then((r) => r.status)),
    );
    assertEquals(together, [504, 504, 504, 504, 504, 504]);
    assertEquals(await hello(), [200, "hello world\n"]);
    // Many in a row.
    for (let i = 0; i < 10; i++) {
      const response = await fetch(`${server.url}/spin`);
      assertEquals(response.status, 504);
      assertIncludes(await response.text(), "timed out after 500 ms");
    }
    assertEquals(await hello(), [200, "hello world\n"]);
    const load = await idleLoad(pid);
    assertOk(load < IDLE, `the server used ${load.toFixed(2)} of a core while idle`);
    assertEquals(await threads(pid), idleThreads, "threads back to their idle count");
    assertOk(!server.output().stderr.includes("given up"), server.output().stderr);
  } finally {
    await server.stop();
  }
});

Deno.test("guests waiting in the host are woken and stopped: sleep, upload, full pipe, upstream", async () => {
  const { server, pid, idleThreads } = await start();
  try {
    // Sleeping a minute.
    const sleepy = await fetch(`${server.url}/sleepy`);
    assertEquals(sleepy.status, 200, "its header block was out before the deadline");
    const cut = await sleepy.text().then(() => "ended", () => "cut off");
    assertEquals(cut, "cut off");

    // Reading an upload that never ends: it declares a megabyte and sends a few bytes.
    const port = Number(new URL(server.url).port);
    const uploader = await Deno.connect({ hostname: "127.0.0.1", port });
    await uploader.write(new TextEncoder().encode(
      "POST /cat HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nContent-Type: x\n\n",
    ));
    const answer = new Uint8Array(4096);
    const n = await uploader.read(answer);
    assertIncludes(new TextDecoder().decode(answer.subarray(0, n ?? 0)), "HTTP/1.1 504");
    uploader.close();

    // Writing to a client that stopped reading.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("GET /flood HTTP/1.1\r\nHost: x\r\n\r\n"));
    await sleep(1500);
    conn.close();

    // Waiting on an upstream that answers after 30 s.
    const fetched = await fetch(
      `${server.url}/fetch?url=http://127.0.0.1:${upstream.addr.port}/slow`,
    );
    assertEquals(fetched.status, 504);
    await fetched.body?.cancel();
    for (const release of held.splice(0)) release();

    const load = await idleLoad(pid);
    assertOk(load < IDLE, `the server used ${load.toFixed(2)} of a core while idle`);
    assertEquals(await threads(pid), idleThreads, "threads back to their idle count");
    const after = await fetch(`${server.url}/hello`);
    assertEquals(await after.text(), "hello world\n");
    assertOk(!server.output().stderr.includes("given up"), server.output().stderr);
  } finally {
    await server.stop();
  }
});

Deno.test("a client that leaves stops its guest", async () => {
  const { server, pid } = await start();
  try {
    const abort = new AbortController();
    const request = fetch(`${server.url}/spin-long`, { signal: abort.signal }).catch(() => "gone");
    await sleep(500);
    abort.abort();
    assertEquals(await request, "gone");
    const load = await idleLoad(pid);
    assertOk(load < IDLE, `the server used ${load.toFixed(2)} of a core after the client left`);
  } finally {
    await server.stop();
  }
});

Deno.test("SIGTERM with runaway guests in flight: stopped at the drain timeout, exit 0", async () => {
  const { server } = await start(["--drain-timeout", "1"]);
  const stuck = Array.from(
    { length: 2 },
    () => fetch(`${server.url}/spin-long`).then((r) => r.status, () => "failed"),
  );
  await sleep(300);
  const signalledAt = performance.now();
  const status = await server.stop();
  const exitedAfter = performance.now() - signalledAt;
  assertEquals(status.code, 0);
  assertOk(exitedAfter >= 900, `waited for the drain timeout (${exitedAfter} ms)`);
  // Within the drain timeout plus a second.
  assertOk(exitedAfter < 1000 + 1000, `exited ${exitedAfter} ms after the signal`);
  assertEquals(await Promise.all(stuck), [503, 503]);
});

globalThis.addEventListener("unload", () => upstream.shutdown());
