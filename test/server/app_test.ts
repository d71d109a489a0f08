/**
 * The app in-process, with a fake executor: what reaches the guest and what the client gets.
 * @module
 */

import { assertEquals, assertIncludes, assertOk } from "../_assert.ts";
import { createApp } from "../../src/server/app.ts";
import { Metrics } from "../../src/server/metrics.ts";
import type { RouteHandler } from "../../src/server/handlers.ts";
import { RoutingTable } from "../../src/routing/table.ts";
import { parseRoute } from "../../src/routing/route.ts";
import { ModuleLog } from "../../src/server/module_log.ts";
import type { Logger } from "../../src/server/logger.ts";
import { DEFAULT_OUTBOUND } from "../../src/outbound_http/names.ts";
import { compileFixture } from "../_fixtures.ts";
import { tempDir } from "../_temp.ts";
import { FakeExecutor, outcome, type Script } from "./_fake_executor.ts";
import type { RunSpec } from "../../src/run/contract.ts";

const module = await compileFixture("cat.wasm");

/** A handler for `route` whose module reads its argv and environment. */
function handler(route: string, timeoutMs = 1000): RouteHandler {
  return {
    pattern: parseRoute(route),
    matchedRoute: route,
    entry: {
      index: 1,
      line: 1,
      route,
      module: "cat.wasm",
      modulePath: "/nowhere/cat.wasm",
      entrypoint: "_start",
      volumes: [],
      environment: { FROM_CONFIG: "yes" },
    },
    entrypoint: "_start",
    module,
    logKey: "key",
    timeoutMs,
    outbound: DEFAULT_OUTBOUND,
    reads: { args: true, env: true },
  };
}

/** A logger that keeps its lines. */
function keptLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(`info: ${m}`),
    warn: (m) => lines.push(`warn: ${m}`),
    error: (m) => lines.push(`error: ${m}`),
  };
}

const CLIENT = { remoteAddr: { transport: "tcp", hostname: "192.0.2.7" } };

async function setUp(
  script: (spec: RunSpec) => Script,
  maxBodyBytes = 1024 * 1024,
  withMetrics = false,
  exposeRoutes = false,
) {
  const executor = new FakeExecutor(script);
  const logger = keptLogger();
  const logDir = await tempDir("wagi-app-");
  const handlers = [handler("/echo/..."), handler("/slow")];
  const metrics = withMetrics
    ? new Metrics(handlers.map((h) => [h, h.matchedRoute] as const))
    : undefined;
  const app = createApp({
    metrics,
    serveMetrics: withMetrics,
    exposeRoutes,
    table: new RoutingTable(handlers),
    executor,
    moduleLog: new ModuleLog(logDir),
    logger,
    hostname: { name: "localhost", port: "3000" },
    globalEnv: [["GLOBAL", "1"]],
    scheme: "http",
    caps: { maxBodyBytes, maxResponseBytes: 1024 * 1024 },
  });
  const request = (path: string, init?: RequestInit) =>
    Promise.resolve(app(new Request(`http://localhost:3000${path}`, init), CLIENT));
  return { app, request, executor, logger, logDir, metrics };
}

const ok = (body: string): Script => ({ finished: `Content-Type: text/plain\n\n${body}` });

Deno.test("app: the health check answers itself; an unknown path is 404 without a run", async () => {
  const { request, executor } = await setUp(() => ok("never"));
  const health = await request("/healthz");
  assertEquals([health.status, await health.text()], [200, "OK"]);
  const missing = await request("/nope");
  assertEquals(missing.status, 404);
  await missing.body?.cancel();
  assertEquals(executor.specs.length, 0);
});

Deno.test("app: the run gets WAGI's argv and CGI environment, and its stdout is the response", async () => {
  const { request, executor } = await setUp(() => ok("hi"));
  const response = await request("/echo/a%20b?x=1&y=2", { headers: { "X-Thing": "t" } });
  assertEquals([response.status, await response.text()], [200, "hi"]);
  const spec = executor.specs[0];
  assertEquals(spec.args, ["/echo/a%20b", "x=1", "y=2"]);
  const env = Object.fromEntries(spec.env);
  assertEquals(env.PATH_INFO, "/a b");
  assertEquals(env.SCRIPT_NAME, "/echo");
  assertEquals(env.QUERY_STRING, "x=1&y=2");
  assertEquals(env.REMOTE_ADDR, "192.0.2.7");
  assertEquals(env.HTTP_X_THING, "t");
  assertEquals([env.GLOBAL, env.FROM_CONFIG], ["1", "yes"]);
  assertEquals([spec.timeoutMs, spec.group], [1000, "/echo/..."]);
});

Deno.test("app: a small body is handed over whole, a large one streamed", async () => {
  const { request, executor } = await setUp(() => ok(""));
  await (await request("/echo/", { method: "POST", body: "small" })).text();
  await (await request("/echo/", { method: "POST", body: "x".repeat(100_000) })).text();
  const [small, large] = executor.specs;
  assertEquals(new TextDecoder().decode(small.stdin as Uint8Array), "small");
  assertOk(large.stdin instanceof ReadableStream, "a body above wholeStdinBytes streams");
  assertEquals(Object.fromEntries(large.env).CONTENT_LENGTH, "100000");
});

Deno.test("app: a declared body over the cap is 413 before anything runs", async () => {
  const { request, executor } = await setUp(() => ok(""), 10);
  const response = await request("/echo/", { method: "POST", body: "more than ten bytes" });
  assertEquals(response.status, 413);
  await response.body?.cancel();
  assertEquals(executor.specs.length, 0);
});

Deno.test("app: how a run ended chooses the status; stderr goes to the route's log", async () => {
  const endings: Record<string, Script> = {
    "/echo/timeout": {
      chunks: [],
      outcome: outcome({ stop: "timeout", failure: "timed out after 1000 ms" }),
    },
    "/echo/trap": {
      finished: "",
      outcome: outcome({
        failure: "trap: unreachable",
        stderr: new TextEncoder().encode("oops\n"),
      }),
    },
    "/echo/exit": { finished: "", outcome: outcome({ exitCode: 3 }) },
    "/echo/big": { chunks: [], outcome: outcome({ stop: "body-too-large", failure: "over" }) },
  };
  const { request, logger, logDir } = await setUp((spec) => endings[spec.args[0]]);
  const statuses: Record<string, number> = {};
  for (const path of Object.keys(endings)) {
    const response = await request(path);
    statuses[path] = response.status;
    await response.body?.cancel();
  }
  assertEquals(statuses, {
    "/echo/timeout": 504,
    "/echo/trap": 500,
    "/echo/exit": 500,
    "/echo/big": 413,
  });
  // The log is written after the response: wait for it.
  for (let i = 0; i < 50 && !logger.lines.some((l) => l.includes("module.stderr")); i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assertEquals(await Deno.readTextFile(`${logDir}/key/module.stderr`), "oops\n");
  assertOk(logger.lines.some((l) => l.includes("GET /echo/trap → cat.wasm#_start: trap")));
});

Deno.test("app: a streamed run's body is sent as it comes; a client that leaves cancels it", async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  async function* chunks() {
    yield "Content-Type: text/plain\n\nfirst\n";
    await gate;
    yield "second\n";
  }
  const { request, executor } = await setUp(() => ({ chunks: chunks() }));
  const response = await request("/slow");
  assertEquals(response.status, 200);
  const reader = response.body!.getReader();
  assertEquals(new TextDecoder().decode((await reader.read()).value), "first\n");
  await reader.cancel();
  assertOk(executor.cancelled.has(0), "cancelling the response cancels the run");
  release();
});

Deno.test("app: a handler that throws is a 500, logged, and the app keeps serving", async () => {
  let calls = 0;
  const { request, logger } = await setUp(() => {
    if (calls++ === 0) throw new Error("executor exploded");
    return ok("fine");
  });
  const failed = await request("/slow");
  assertEquals(failed.status, 500);
  await failed.body?.cancel();
  assertIncludes(logger.lines.join("\n"), "executor exploded");
  const next = await request("/slow");
  assertEquals([next.status, await next.text()], [200, "fine"]);
});

Deno.test("app: /metrics counts each route's answers by class, 413s, and unmatched paths", async () => {
  const { request } = await setUp(() => ok("hi"), 10, true);
  for (let i = 0; i < 3; i++) await (await request("/echo/x")).text();
  await (await request("/echo/", { method: "POST", body: "more than ten bytes" })).text();
  await (await request("/nowhere")).text();
  const scrape = await request("/metrics");
  assertEquals(scrape.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const text = await scrape.text();
  assertIncludes(text, 'wagi_requests_total{route="/echo/...",code="2xx"} 3\n');
  assertIncludes(text, 'wagi_requests_total{route="/echo/...",code="4xx"} 1\n');
  assertIncludes(text, 'wagi_requests_total{route="(none)",code="4xx"} 1\n');
  assertIncludes(text, 'wagi_request_duration_seconds_count{route="/echo/..."} 4\n');
  assertIncludes(text, 'wagi_request_duration_seconds_bucket{route="/echo/...",le="+Inf"} 4\n');
  assertIncludes(text, "wagi_body_too_large_total 1\n");
  // The scrape itself is the server's own endpoint, not a route.
  assertEquals(text.includes("/metrics"), false);
});

Deno.test("app: without metrics, /metrics is an ordinary path", async () => {
  const { request } = await setUp(() => ok("hi"));
  const response = await request("/metrics");
  assertEquals(response.status, 404);
  await response.body?.cancel();
});

Deno.test("app: /_wagi/routes lists the table without host paths, only when asked for", async () => {
  const { request } = await setUp(() => ok("hi"), 1024, false, true);
  const response = await request("/_wagi/routes");
  assertEquals(response.headers.get("content-type"), "application/json");
  assertOk(response.headers.get("server-timing")?.includes("total"), "Hono's timing middleware");
  const listing = await response.json();
  assertEquals(listing.map((r: { route: string }) => r.route), ["/echo/...", "/slow"]);
  assertEquals(listing[0].module, "cat.wasm");
  assertEquals(JSON.stringify(listing).includes("/nowhere"), false, "no host path");
  const hidden = await (await setUp(() => ok("hi"))).request("/_wagi/routes");
  assertEquals(hidden.status, 404);
  await hidden.body?.cancel();
});
