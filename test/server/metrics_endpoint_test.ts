import { assertEquals, assertIncludes, assertOk } from "../_assert.ts";
import { ROOT } from "../_fixtures.ts";
import { writeConfig } from "../_temp.ts";
import { spawnServer, startServer } from "./_server.ts";

const config = await writeConfig(`
[[module]]
route = "/hello"
module = "${ROOT}modules/hello.wasm"

[[module]]
route = "/sleepy"
module = "${ROOT}test/fixtures/sleepy.wasm"
timeout = 0.3
`);

/** The value of the series `name` (with its labels as written) in a scrape. */
const valueOf = (scrape: string, series: string) =>
  Number(scrape.split("\n").find((line) => line.startsWith(`${series} `))?.split(" ")[1]);

Deno.test("/metrics on the main port counts requests, timeouts and moves, and reads gauges", async () => {
  const server = await startServer(["-c", config]);
  try {
    for (let i = 0; i < 5; i++) await (await fetch(`${server.url}/hello`)).text();
    // Sleeps: moved to the pool, then stopped at its timeout (its body read to the cut).
    await fetch(`${server.url}/sleepy`).then((r) => r.text()).catch(() => {});
    await (await fetch(`${server.url}/nowhere`)).text();
    const response = await fetch(`${server.url}/metrics`);
    assertEquals(response.status, 200);
    const scrape = await response.text();
    assertEquals(valueOf(scrape, 'wagi_requests_total{route="/hello",code="2xx"}'), 5);
    assertEquals(valueOf(scrape, 'wagi_requests_total{route="(none)",code="4xx"}'), 1);
    assertEquals(valueOf(scrape, 'wagi_request_duration_seconds_count{route="/hello"}'), 5);
    assertEquals(valueOf(scrape, "wagi_moves_to_pool_total"), 1);
    assertOk(valueOf(scrape, "wagi_pool_workers") >= 1, scrape);
    assertOk(valueOf(scrape, "process_resident_memory_bytes") > 1024 * 1024, scrape);
    assertIncludes(scrape, "wagi_module_cache_made_total ");
    assertEquals(valueOf(scrape, "wagi_pool_queued"), 0);
    assertEquals(valueOf(scrape, "wagi_reloads_total"), 0);
    assertOk(valueOf(scrape, 'wagi_guest_seconds_total{route="/hello"}') > 0, scrape);
    // The timeout is counted once the stopped run has ended.
    let timeouts = 0;
    for (let i = 0; i < 50 && timeouts === 0; i++) {
      timeouts = valueOf(
        await (await fetch(`${server.url}/metrics`)).text(),
        "wagi_timeouts_total",
      );
      if (timeouts === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assertEquals(timeouts, 1);
  } finally {
    await server.stop();
  }
});

Deno.test("--metrics off leaves /metrics to the routes; IP:PORT serves it there alone", async () => {
  const off = await startServer(["-c", config, "--metrics", "off"]);
  try {
    const response = await fetch(`${off.url}/metrics`);
    assertEquals(response.status, 404);
    await response.body?.cancel();
  } finally {
    await off.stop();
  }
  const apart = await startServer(["-c", config, "--metrics", "127.0.0.1:0"]);
  try {
    await (await fetch(`${apart.url}/hello`)).text();
    let url: string | undefined;
    for (let i = 0; i < 100 && !url; i++) {
      url = apart.output().stderr.match(/metrics on (http:\/\/\S+\/metrics)/)?.[1];
      if (!url) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assertOk(url, apart.output().stderr);
    const scrape = await (await fetch(url)).text();
    assertEquals(valueOf(scrape, 'wagi_requests_total{route="/hello",code="2xx"}'), 1);
    const main = await fetch(`${apart.url}/metrics`);
    assertEquals(main.status, 404, "not on the main port");
    await main.body?.cancel();
  } finally {
    const status = await apart.stop();
    assertEquals(status.code, 0, "both listeners closed at the stop");
  }
});

Deno.test("--access-log writes a line per request, built-in endpoints included, to its file or stdout", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wagi-access-" });
  try {
    const file = `${dir}/access.log`;
    const json = await startServer([
      "-c",
      config,
      "--access-log",
      "json",
      "--access-log-file",
      file,
    ]);
    try {
      await (await fetch(`${json.url}/hello?x=1`)).text();
      await (await fetch(`${json.url}/nowhere`)).text();
      await (await fetch(`${json.url}/healthz`)).text();
    } finally {
      await json.stop();
    }
    const lines = (await Deno.readTextFile(file)).trim().split("\n").map((l) => JSON.parse(l));
    assertEquals(
      lines.map((l) => [l.method, l.target, l.status, l.route]),
      [["GET", "/hello?x=1", 200, "/hello"], ["GET", "/nowhere", 404, null], [
        "GET",
        "/healthz",
        200,
        null,
      ]],
    );
    assertEquals(lines[0].remote, "127.0.0.1");

    const common = await startServer(["-c", config, "--access-log", "common"]);
    try {
      await (await fetch(`${common.url}/hello`)).text();
    } finally {
      await common.stop();
    }
    assertOk(
      /^127\.0\.0\.1 - - \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET \/hello HTTP\/1\.1" 200 /m
        .test(common.output().stdout),
      common.output().stdout,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--metrics on a busy address is a clear startup error, exit 1", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const { port } = busy.addr as Deno.NetAddr;
    const result = await spawnServer(["-c", config, "--metrics", `127.0.0.1:${port}`]);
    assertOk("code" in result, "the server started anyway");
    assertEquals(result.code, 1);
    assertIncludes(result.stderr, `error: --metrics: cannot listen on 127.0.0.1:${port}`);
  } finally {
    busy.close();
  }
});
