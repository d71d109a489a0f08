/**
 * Several server isolates on one port (`--servers 2`), through the real server: connections
 * reach both, and the process still behaves as one server — `/metrics` counts every isolate's
 * requests whichever answers, a runaway guest in any isolate is stopped, SIGHUP reloads every
 * isolate, SIGTERM drains every isolate's requests and the process exits 0.
 * @module
 */

import { assertEquals, assertIncludes, assertOk } from "../_assert.ts";
import { fixture, ROOT } from "../_fixtures.ts";
import { IDLE, idleLoad } from "../_proc.ts";
import { tempDir, writeConfig } from "../_temp.ts";
import { type ServerProcess, spawnServer, startServer } from "../server/_server.ts";
import { ServerIsolates } from "../../src/cli/server_isolates.ts";
import { parseServeArgs } from "../../src/cli/serve_options.ts";
import { freePort } from "../_net.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const CONFIG = `
[[module]]
route = "/hello"
module = "${ROOT}modules/hello.wasm"

[[module]]
route = "/spin"
module = "${fixture("spin.wasm")}"
timeout = 0.5

[[module]]
route = "/slow"
module = "${fixture("slow.wasm")}"
`;

/** Starts `--servers 2` and waits until the second isolate listens too. */
async function startTwo(config: string, extra: string[] = []): Promise<ServerProcess> {
  const server = await startServer(["-c", config, "--servers", "2", ...extra]);
  const deadline = Date.now() + 20_000;
  while (!server.output().stderr.includes("serving from 2 of 2 server isolates")) {
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`the second isolate did not listen:\n${server.output().stderr}`);
    }
    await sleep(50);
  }
  return server;
}

/** GET on a connection of its own: the kernel picks the isolate per connection. */
async function fresh(url: string): Promise<[number, string]> {
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  try {
    const response = await fetch(url, { client });
    return [response.status, await response.text()];
  } finally {
    client.close();
  }
}

/** One value of a Prometheus text, by its series (name and labels as printed). */
function sample(metrics: string, series: string): number {
  const line = metrics.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

Deno.test("--servers 2: connections reach both isolates, and every scrape counts them all", async () => {
  const server = await startTwo(await writeConfig(CONFIG));
  try {
    for (let i = 0; i < 40; i++) {
      assertEquals(await fresh(`${server.url}/hello`), [200, "hello world\n"]);
    }
    // Each scrape is answered by one isolate or the other: all of them add up the same.
    for (let i = 0; i < 6; i++) {
      const [status, metrics] = await fresh(`${server.url}/metrics`);
      assertEquals(status, 200);
      assertEquals(sample(metrics, 'wagi_requests_total{route="/hello",code="2xx"}'), 40);
      const first = sample(metrics, 'wagi_server_requests_total{isolate="0"}');
      const second = sample(metrics, 'wagi_server_requests_total{isolate="1"}');
      assertEquals(first + second, 40);
      assertOk(first > 0 && second > 0, `both isolates served: ${first} and ${second}`);
      // One process: its memory is said once, not once per isolate.
      const rss = sample(metrics, "process_resident_memory_bytes");
      assertOk(rss > 0 && rss < 2 * 1024 ** 3, `resident memory ${rss}`);
    }
    // The route table and the ready line are said once.
    assertEquals(server.output().stdout.match(/Ready: serving/g)?.length, 1);
    assertEquals(server.output().stdout.match(/Routes:/g)?.length, 1);
  } finally {
    assertEquals((await server.stop()).code, 0);
  }
});

Deno.test("--servers 2: runaway guests in either isolate are stopped, and the process goes idle", async () => {
  const server = await startTwo(await writeConfig(CONFIG));
  try {
    const statuses = await Promise.all(
      Array.from({ length: 8 }, () => fresh(`${server.url}/spin`).then(([status]) => status)),
    );
    assertEquals(statuses, Array(8).fill(504));
    const [, metrics] = await fresh(`${server.url}/metrics`);
    assertEquals(sample(metrics, "wagi_timeouts_total"), 8);
    assertOk(sample(metrics, 'wagi_server_requests_total{isolate="1"}') > 0, metrics);
    const load = await idleLoad(server.child.pid);
    assertOk(load < IDLE, `the server used ${load.toFixed(2)} of a core while idle`);
    assertEquals(await fresh(`${server.url}/hello`), [200, "hello world\n"]);
  } finally {
    assertEquals((await server.stop()).code, 0);
  }
});

Deno.test("--servers 2: SIGHUP reloads every isolate", async () => {
  const config = await writeConfig(CONFIG);
  const server = await startTwo(config);
  try {
    await Deno.writeTextFile(
      config,
      CONFIG.replace('route = "/hello"', 'route = "/greeting"'),
    );
    Deno.kill(server.child.pid, "SIGHUP");
    // Whichever isolate each connection reaches answers the new route, once all switched.
    const deadline = Date.now() + 10_000;
    let answers: number[] = [];
    while (Date.now() < deadline) {
      answers = [];
      for (let i = 0; i < 30; i++) answers.push((await fresh(`${server.url}/greeting`))[0]);
      if (answers.every((status) => status === 200)) break;
      await sleep(100);
    }
    assertEquals(answers, Array(30).fill(200));
    for (let i = 0; i < 20; i++) assertEquals((await fresh(`${server.url}/hello`))[0], 404);
    const [, metrics] = await fresh(`${server.url}/metrics`);
    assertEquals(sample(metrics, "wagi_reloads_total"), 1);
    assertEquals(sample(metrics, "wagi_config_last_reload_successful"), 1);
    assertOk(sample(metrics, 'wagi_server_requests_total{isolate="1"}') > 0, metrics);
  } finally {
    assertEquals((await server.stop()).code, 0);
  }
});

Deno.test("--servers 2: SIGTERM lets every isolate finish its requests, then the process exits 0", async () => {
  const server = await startTwo(await writeConfig(CONFIG));
  // Each on a connection of its own, so that both isolates have some (all 16 on one of two
  // isolates: one chance in 2^15).
  const slow = Array.from({ length: 16 }, () => fresh(`${server.url}/slow`));
  await sleep(400);
  const status = await server.stop();
  assertEquals(await Promise.all(slow), Array(16).fill([200, "first\nsecond\n"]));
  assertEquals(status.code, 0);
  assertIncludes(server.output().stderr, "info: stopped");
  // The isolate started last stopped quietly, as part of the one server.
  assertEquals(server.output().stderr.match(/info: stopping/g)?.length, 1);
});

Deno.test("an isolate that cannot start is reported by name and reason, and the count says so", async () => {
  // Its configuration broke between the main isolate's load and its own: the others serve on.
  const config = await writeConfig("[[module]\nroute = ");
  const dir = config.slice(0, config.lastIndexOf("/"));
  const options = parseServeArgs(["-c", config, "--metrics", "off"], () => undefined, dir, dir);
  const errors: string[] = [];
  const logger = { info() {}, warn() {}, error: (message: string) => void errors.push(message) };
  const listening = await new Promise<number>((resolve) =>
    new ServerIsolates(
      1,
      { ...options, servers: 2 },
      freePort(),
      logger,
      () => undefined,
      resolve,
      0,
    )
  );
  assertEquals(listening, 0);
  assertEquals(errors.length, 1);
  assertIncludes(errors[0], "server isolate 1 did not start: ");
  assertIncludes(errors[0], config);
});

Deno.test("--servers 2 on a port another server already serves is the usual busy-port error", async () => {
  const first = await startTwo(await writeConfig(CONFIG));
  try {
    const listen = new URL(first.url).host;
    const second = await spawnServer([
      "-c",
      await writeConfig(CONFIG),
      "--servers",
      "2",
      "-l",
      listen,
    ]);
    assertOk("code" in second, "the second server did not start");
    assertEquals(second.code, 1);
    assertIncludes(second.stderr, `cannot listen on ${listen}`);
    // Every connection still reaches the first one.
    for (let i = 0; i < 10; i++) {
      assertEquals(await fresh(`${first.url}/hello`), [200, "hello world\n"]);
    }
  } finally {
    assertEquals((await first.stop()).code, 0);
  }
});

Deno.test("--servers 2 with --metrics on an address of its own: that listener counts every isolate", async () => {
  const server = await startTwo(await writeConfig(CONFIG), ["--metrics", "127.0.0.1:0"]);
  try {
    const address = server.output().stderr.match(/metrics on (http:\/\/\S+\/metrics)/)?.[1];
    assertOk(address, server.output().stderr);
    for (let i = 0; i < 30; i++) {
      assertEquals(await fresh(`${server.url}/hello`), [200, "hello world\n"]);
    }
    const [status, metrics] = await fresh(address);
    assertEquals(status, 200);
    assertEquals(sample(metrics, 'wagi_requests_total{route="/hello",code="2xx"}'), 30);
    assertOk(sample(metrics, 'wagi_server_requests_total{isolate="1"}') > 0, metrics);
    // Not on the main port, whichever isolate gets the connection.
    for (let i = 0; i < 6; i++) assertEquals((await fresh(`${server.url}/metrics`))[0], 404);
  } finally {
    assertEquals((await server.stop()).code, 0);
  }
});

Deno.test("without Deno's --unstable-net, --servers 2 says so and serves from one isolate", async () => {
  // The project's configuration with `net` taken out of its unstable features.
  const denoJson = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  denoJson.unstable = denoJson.unstable.filter((feature: string) => feature !== "net");
  const dir = await tempDir("wagi-no-unstable-net-");
  await Deno.writeTextFile(`${dir}/deno.json`, JSON.stringify(denoJson));
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "--allow-all", "--no-lock", "--config", `${dir}/deno.json`],
      ...[`${ROOT}src/main.ts`, "-c", await writeConfig(CONFIG), "--servers", "2"],
      ...["-l", `127.0.0.1:${port}`, "--module-cache", `${dir}/cache`],
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let out = "";
    while (!out.includes("Ready: serving on")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`exited before it was ready: ${await stderr}`);
      out += value;
    }
    for (let i = 0; i < 10; i++) {
      assertEquals(await fresh(`http://127.0.0.1:${port}/hello`), [200, "hello world\n"]);
    }
  } finally {
    reader.cancel();
    child.kill("SIGTERM");
    assertEquals((await child.status).code, 0);
  }
  assertIncludes(
    await stderr,
    "--servers 2: this process cannot share its port (SO_REUSEPORT needs Linux and Deno's " +
      "--unstable-net); serving from one isolate",
  );
});
