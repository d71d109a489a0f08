/**
 * The throughput benchmark: a bare `Deno.serve` hello and wagi-deno (one server isolate with
 * one worker, and the defaults: as many isolates and workers as CPUs), driven in the same run with the same load — ApacheBench
 * (`ab -k -n 10000 -c 100`, the seed article's) and wrk at concurrency 10 and 100 — on `/`
 * (WAT hello), `/hello` (C hello), `/env` (larger output), a POST echo, a query page from Rust
 * and from AssemblyScript, a C table with ~3 ms of work, the C wasi:http component
 * (modules/http_component.c, through jco-transpile 0.1.1) and the JavaScript one
 * (modules/js_component.js, built here with componentize-js); the pool alone (`--pool-only`) on
 * `/hello`. Prints requests/s,
 * latency percentiles, failures and peak RSS, then each figure as a ratio to bare Deno.serve,
 * and to a bare Deno.serve replaying, for each route, the response wagi-deno sent (recorded
 * first: bare_replay.ts), and writes test/bench/RESULTS.md and test/bench/chart.svg (medians of
 * the runs). With
 * lighttpd and a C compiler, the same C hello also runs as a classic CGI program (the
 * baseline WAGI was conceived against). Last, the server's RSS after 10k and after 1M
 * requests (one isolate, one worker, `/hello`), to show that memory does not creep.
 *
 * Run: deno task bench [runs=3] [seconds=5] [rss-requests=1000000]
 * Needs: apt-get install apache2-utils wrk (an absent tool is reported and skipped);
 * optionally lighttpd and cc for the CGI row.
 * @module
 */

import { JCO_TRANSPILE_VERSION } from "../../src/component/transpile.ts";
import { COMPONENTIZE_JS_VERSION } from "../../modules/build_component.ts";
import { fromFileUrl } from "../_paths.ts";
import { freePort } from "../_net.ts";
import { buildJsComponent } from "../_js_component.ts";
import type { Recorded } from "./bare_replay.ts";

const ROOT = fromFileUrl(new URL("../..", import.meta.url));
const RUNS = Number(Deno.args[0] ?? 3);
const SECONDS = Number(Deno.args[1] ?? 5);
const RSS_REQUESTS = Number(Deno.args[2] ?? 1_000_000);

interface Sample {
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  failed: number;
  rssMiB: number;
}

async function has(tool: string): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("sh", { args: ["-c", `command -v ${tool}`] })
      .output();
    return success;
  } catch {
    return false;
  }
}

async function rssMiB(pid: number): Promise<number> {
  // The server and its worker threads share one process; RSS covers them all.
  const status = await Deno.readTextFile(`/proc/${pid}/status`).catch(() => "");
  const match = status.match(/VmRSS:\s+(\d+) kB/);
  return match ? Number(match[1]) / 1024 : 0;
}

/** Milliseconds from a wrk/ab latency like "1.23ms", "850.00us", "2.10s". */
function ms(value: string): number {
  const match = value.match(/([\d.]+)(us|ms|s)/)!;
  const n = Number(match[1]);
  return match[2] === "us" ? n / 1000 : match[2] === "s" ? n * 1000 : n;
}

async function run(command: string, args: string[]): Promise<string> {
  const { stdout, stderr } = await new Deno.Command(command, { args }).output();
  return new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
}

/** One load run; peak RSS of `pid` sampled meanwhile. */
async function load(
  tool: "ab" | "wrk10" | "wrk100",
  url: string,
  post: string | undefined,
  pid: number,
): Promise<Sample> {
  let peak = 0;
  const sampler = setInterval(async () => (peak = Math.max(peak, await rssMiB(pid))), 200);
  try {
    if (tool === "ab") {
      const args = ["-k", "-q", "-n", "10000", "-c", "100"];
      if (post) args.push("-p", post, "-T", "text/plain");
      const out = await run("ab", [...args, url]);
      const pct = (p: number) => Number(out.match(new RegExp(`^\\s*${p}%\\s+(\\d+)`, "m"))?.[1]);
      return {
        rps: Number(out.match(/Requests per second:\s+([\d.]+)/)?.[1] ?? 0),
        p50: pct(50),
        p90: pct(90),
        p99: pct(99),
        failed: Number(out.match(/Failed requests:\s+(\d+)/)?.[1] ?? 0) +
          Number(out.match(/Non-2xx responses:\s+(\d+)/)?.[1] ?? 0),
        rssMiB: peak,
      };
    }
    const connections = tool === "wrk10" ? "10" : "100";
    // One wrk thread: the servers under test use one thread too, and on a small machine a
    // second load thread only competes with them for the cores (every server measured slower).
    const args = ["-t1", `-c${connections}`, `-d${SECONDS}s`, "--latency"];
    if (post) args.push("-s", post);
    const out = await run("wrk", [...args, url]);
    const pct = (p: number) => ms(out.match(new RegExp(`^\\s*${p}%\\s+(\\S+)`, "m"))?.[1] ?? "0ms");
    const errors = out.match(
      /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/,
    );
    return {
      rps: Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? 0),
      p50: pct(50),
      p90: pct(90),
      p99: pct(99),
      failed: Number(out.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0) +
        (errors ? errors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0),
      rssMiB: peak,
    };
  } finally {
    clearInterval(sampler);
  }
}

/** How to start one server under test on a port. */
interface ServerSpec {
  name: string;
  spawn(port: number): Deno.ChildProcess;
  /** The path that answers once it is up. */
  ready: string;
  /** Only these routes are measured (all when absent). */
  routes?: Set<string>;
}

/** A Deno program of this repository, `$PORT` in its arguments replaced by the port. */
function denoServer(name: string, args: string[]): ServerSpec {
  return {
    name,
    ready: "/",
    spawn: (port) =>
      new Deno.Command(Deno.execPath(), {
        args: args.map((a) => a.replace("$PORT", String(port))),
        cwd: ROOT,
        env: { PORT: String(port), DENO_NO_UPDATE_CHECK: "1" },
        stdout: "null",
        stderr: "null",
      }).spawn(),
  };
}

/**
 * lighttpd running modules/hello.c compiled natively as a CGI program at /hello, or why it
 * cannot run here.
 */
async function cgiServer(dir: string): Promise<ServerSpec | string> {
  if (!(await has("lighttpd"))) return "lighttpd: not installed, CGI baseline skipped";
  if (!(await has("cc"))) return "cc: not installed, CGI baseline skipped";
  await Deno.mkdir(`${dir}/www`, { recursive: true });
  const built = await new Deno.Command("cc", {
    args: ["-O2", "-o", `${dir}/www/hello`, `${ROOT}modules/hello.c`],
  }).output();
  if (!built.success) return "cc: cannot build modules/hello.c, CGI baseline skipped";
  return {
    name: "lighttpd CGI (native C)",
    ready: "/hello",
    routes: new Set(["/hello (C hello)"]),
    spawn: (port) => {
      const conf = `${dir}/lighttpd-${port}.conf`;
      Deno.writeTextFileSync(
        conf,
        [
          `server.document-root = "${dir}/www"`,
          `server.bind = "127.0.0.1"`,
          `server.port = ${port}`,
          `server.modules = ("mod_cgi")`,
          // Every file is run as a program.
          `cgi.assign = ("" => "")`,
          `server.max-connections = 1024`,
          `server.errorlog = "${dir}/lighttpd-error.log"`,
        ].join("\n") + "\n",
      );
      return new Deno.Command("lighttpd", {
        args: ["-D", "-f", conf],
        stdout: "null",
        stderr: "null",
      }).spawn();
    },
  };
}

/** Starts a server process and waits until it answers. */
async function start(spec: ServerSpec): Promise<{ url: string; child: Deno.ChildProcess }> {
  const port = freePort();
  const child = spec.spawn(port);
  const url = `http://127.0.0.1:${port}`;
  // Up to 30 s: the first start transpiles the JavaScript component (~10 s).
  for (let i = 0; i < 600; i++) {
    const ok = await fetch(`${url}${spec.ready}`).then((r) => r.body?.cancel().then(() => r.ok))
      .catch(() => false);
    if (ok) {
      // Warm up: the JIT, and wagi-deno's move of modules to its own thread (about a second
      // after start), before anything is measured.
      if (available.wrk) await run("wrk", ["-t1", "-c10", "-d2s", `${url}${spec.ready}`]);
      else await new Promise((resolve) => setTimeout(resolve, 2000));
      return { url, child };
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill("SIGKILL");
  throw new Error(`${spec.name} did not start`);
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const available = { ab: await has("ab"), wrk: await has("wrk") };
for (const [tool, ok] of Object.entries(available)) {
  if (!ok) console.log(`${tool}: not installed, skipped (apt-get install apache2-utils wrk)`);
}

// The bundled routes, plus a POST echo.
const dir = await Deno.makeTempDir({ prefix: "wagi-bench-" });
// The JavaScript component is built, not committed (~13 MB): as `deno task build-js-component`.
const jsComponent = `${dir}/js_component.wasm`;
await buildJsComponent(jsComponent);
const config = `${dir}/modules.toml`;
await Deno.writeTextFile(
  config,
  (await Deno.readTextFile(`${ROOT}modules/modules.toml`)).replaceAll(
    /module = "([^"]+)"/g,
    (_, file) => `module = "${ROOT}modules/${file}"`,
  ) + `\n[[module]]\nroute = "/echo"\nmodule = "${ROOT}test/fixtures/cat.wasm"\n` +
    `\n[[module]]\nroute = "/js-component/..."\nmodule = "${jsComponent}"\n` +
    // Real modules in other languages, and one with ~3 ms of work per request.
    [
      ["/rust/...", "query_rust.wasm"],
      ["/as/...", "query_as.wasm"],
      ["/table", "table.wasm"],
      ["/component/...", "http_component.wasm"],
    ]
      .map(([route, file]) =>
        `\n[[module]]\nroute = "${route}"\nmodule = "${ROOT}modules/${file}"\n`
      )
      .join(""),
);
const body = "Content-Type: text/plain\n\n" + "x".repeat(1024);
await Deno.writeTextFile(`${dir}/body.txt`, body);
await Deno.writeTextFile(
  `${dir}/post.lua`,
  `wrk.method = "POST"\nwrk.body = ${
    JSON.stringify(body)
  }\nwrk.headers["Content-Type"] = "text/plain"\n`,
);

const serve = [
  "run",
  "--allow-all",
  "--unstable-no-legacy-abort",
  // As `deno task start` and the image run it (see the README's Performance section).
  "--v8-flags=--max-semi-space-size=2,--no-allocation-site-pretenuring",
  "src/main.ts",
  "serve",
  "-c",
  config,
  "-l",
  "127.0.0.1:$PORT",
  // Transpiled once, not at every start.
  "--module-cache",
  `${dir}/module-cache`,
];
const ONE_WORKER = "wagi-deno, 1 isolate, 1 worker";
const servers: ServerSpec[] = [
  denoServer("bare Deno.serve", ["run", "--allow-all", "test/bench/bare_hello.ts"]),
  denoServer(ONE_WORKER, [
    ...serve,
    ...["--servers", "1", "--workers", "1", "--max-concurrency", "1"],
  ]),
  // As many server isolates and pool workers as the machine has CPUs (the defaults).
  denoServer("wagi-deno, default", serve),
  // The worker pool alone: every request handed over to a worker.
  {
    ...denoServer("wagi-deno, --pool-only", [...serve, "--pool-only"]),
    routes: new Set(["/hello (C hello)"]),
  },
];
const cgi = await cgiServer(dir);
if (typeof cgi === "string") console.log(cgi);
else servers.push(cgi);
const routes: [string, string, string | undefined][] = [
  ["/ (WAT hello)", "/", undefined],
  ["/hello (C hello)", "/hello", undefined],
  ["/env (larger output)", "/env/bench?a=1&b=2", undefined],
  ["POST echo (1 KiB)", "/echo", "post"],
  ["/rust (Rust query page)", "/rust/bench?a=1&b=x%20y+z&c=%3Cb%3E", undefined],
  ["/as (AssemblyScript query page)", "/as/bench?a=1&b=x%20y+z&c=%3Cb%3E", undefined],
  ["/table (~3 ms of work)", "/table?seed=7", undefined],
  ["/component (C wasi:http component)", "/component/bench?a=1", undefined],
  ["/js-component (JavaScript wasi:http component)", "/js-component/bench?a=1", undefined],
];

// The second baseline: bare Deno.serve sending, for each route, the response wagi-deno sends.
const SAME_RESPONSE = "bare Deno.serve, same response";
async function recordResponses(): Promise<Recorded[]> {
  const { url, child } = await start(servers.find((s) => s.name === ONE_WORKER)!);
  try {
    const recorded: Recorded[] = [];
    for (const [, path, post] of routes) {
      const response = await fetch(`${url}${path}`, post ? { method: "POST", body } : {});
      const bytes = new Uint8Array(await response.arrayBuffer());
      const headers = [...response.headers].filter(([name]) =>
        !["date", "content-length", "transfer-encoding"].includes(name)
      );
      recorded.push({
        target: path,
        status: response.status,
        headers,
        body: btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join("")),
      });
    }
    return recorded;
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}
await Deno.writeTextFile(`${dir}/recorded.json`, JSON.stringify(await recordResponses()));
servers.splice(
  1,
  0,
  denoServer(SAME_RESPONSE, [
    "run",
    "--allow-all",
    "test/bench/bare_replay.ts",
    `${dir}/recorded.json`,
  ]),
);
const loads = (["ab", "wrk10", "wrk100"] as const).filter((t) =>
  t === "ab" ? available.ab : available.wrk
);

const results = new Map<string, Sample[]>();
const key = (server: string, route: string, tool: string) => `${server}|${route}|${tool}`;
for (let r = 0; r < RUNS; r++) {
  for (const spec of servers) {
    const name = spec.name;
    const { url, child } = await start(spec);
    for (const [label, path, post] of routes) {
      if (spec.routes && !spec.routes.has(label)) continue;
      // The bare server answers every path with its hello: the same work for every route.
      // Each route is warmed first, as the ready path was: its first tens of thousands of
      // requests run while V8 still optimizes the code they take (ab's 10,000 would see that).
      if (available.wrk) {
        const script = post ? ["-s", `${dir}/post.lua`] : [];
        await run("wrk", ["-t1", "-c10", "-d1s", ...script, `${url}${path}`]);
      }
      for (const tool of loads) {
        const postFile = post ? (tool === "ab" ? `${dir}/body.txt` : `${dir}/post.lua`) : undefined;
        const sample = await load(tool, `${url}${path}`, postFile, child.pid);
        const k = key(name, label, tool);
        results.set(k, [...(results.get(k) ?? []), sample]);
        console.error(
          `run ${r + 1}/${RUNS} ${name} ${label} ${tool}: ${sample.rps.toFixed(0)} req/s`,
        );
      }
    }
    child.kill("SIGTERM");
    await child.status;
  }
}

const med = (k: string) => {
  const samples = results.get(k)!;
  const m = (f: keyof Sample) => median(samples.map((s) => s[f]));
  return {
    rps: m("rps"),
    p50: m("p50"),
    p90: m("p90"),
    p99: m("p99"),
    failed: m("failed"),
    rssMiB: m("rssMiB"),
  };
};
const toolName = { ab: "ab -k -n 10000 -c 100", wrk10: "wrk -t1 -c 10", wrk100: "wrk -t1 -c 100" };
const lines: string[] = [];
for (const tool of loads) {
  lines.push(`\n### ${toolName[tool]}\n`);
  lines.push(
    "| route | server | req/s | p50 ms | p90 ms | p99 ms | failed | peak RSS MiB | req/s vs bare | p99 vs bare | req/s vs bare, same response |",
  );
  lines.push("|---|---|---|---|---|---|---|---|---|---|---|");
  for (const [label] of routes) {
    const bare = med(key("bare Deno.serve", label, tool));
    const same = med(key(SAME_RESPONSE, label, tool));
    for (const { name } of servers) {
      if (!results.has(key(name, label, tool))) continue;
      const s = med(key(name, label, tool));
      lines.push(
        `| ${label} | ${name} | ${s.rps.toFixed(0)} | ${s.p50.toFixed(2)} | ${
          s.p90.toFixed(2)
        } | ` +
          `${s.p99.toFixed(2)} | ${s.failed} | ${s.rssMiB.toFixed(0)} | ${
            (s.rps / bare.rps).toFixed(3)
          }x | ` +
          `${(s.p99 / bare.p99).toFixed(1)}x | ${(s.rps / same.rps).toFixed(3)}x |`,
      );
    }
  }
}
const table = lines.join("\n");
console.log(table);

/** The server's RSS after 10k requests, then after `RSS_REQUESTS` in all (ab -k -c 10). */
async function rssOverTime(): Promise<string> {
  if (!available.ab || RSS_REQUESTS <= 10_000) return "";
  const { url, child } = await start(servers.find((s) => s.name === ONE_WORKER)!);
  try {
    const batch = async (n: number) => {
      const out = await run("ab", ["-k", "-q", "-n", String(n), "-c", "10", `${url}/hello`]);
      return Number(out.match(/Failed requests:\s+(\d+)/)?.[1] ?? 0);
    };
    let failed = await batch(10_000);
    const early = await rssMiB(child.pid);
    // ab caps -n per run; the rest goes in batches of 200k.
    for (let done = 10_000; done < RSS_REQUESTS; done += 200_000) {
      failed += await batch(Math.min(200_000, RSS_REQUESTS - done));
    }
    const late = await rssMiB(child.pid);
    console.error(
      `RSS after 10k: ${early.toFixed(0)} MiB, after ${RSS_REQUESTS}: ${late.toFixed(0)} MiB`,
    );
    return `
### RSS over ${RSS_REQUESTS.toLocaleString("en")} requests (${ONE_WORKER}, /hello, ab -k -c 10)

| after 10k requests | after ${RSS_REQUESTS.toLocaleString("en")} | change | failed |
|---|---|---|---|
| ${early.toFixed(0)} MiB | ${late.toFixed(0)} MiB | ${
      ((late / early - 1) * 100).toFixed(1)
    } % | ${failed} |
`;
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}
const rssSection = await rssOverTime();

const cpu =
  (await Deno.readTextFile("/proc/cpuinfo").catch(() => "")).match(/model name\s*:\s*(.+)/)?.[1] ??
    "unknown";
const results_md = `# Benchmark results

Produced by \`deno task bench ${RUNS} ${SECONDS} ${RSS_REQUESTS}\` on ${
  new Date().toISOString().slice(0, 10)
}:
${navigator.hardwareConcurrency} cores (${cpu}), Deno ${Deno.version.deno}, load generators on the
same machine. Each figure is the median of ${RUNS} runs; ratios are against a bare
\`Deno.serve\` hello measured in the same run (the bare server answers every route with its
hello), and, in the last column, against a bare \`Deno.serve\` sending each route the very
response wagi-deno sent it (the cost of the server itself, not of sending more bytes). The
component routes are transpiled by jco-transpile ${JCO_TRANSPILE_VERSION}; the JavaScript one is
built by componentize-js ${COMPONENTIZE_JS_VERSION} (StarlingMonkey). Each
route is warmed with a second of \`wrk -c10\` before it is measured. This machine is shared and
noisy: compare ratios, not absolute numbers.
${table}
${rssSection}
![requests per second relative to bare Deno.serve](chart.svg)
`;
await Deno.writeTextFile(`${ROOT}test/bench/RESULTS.md`, results_md);

// A bar chart of req/s relative to bare Deno.serve at the highest load measured.
const chartTool = loads.includes("wrk100") ? "wrk100" : loads.at(-1);
if (chartTool) {
  const bars = routes.flatMap(([label]) => {
    const bare = med(key("bare Deno.serve", label, chartTool)).rps;
    return servers.filter(({ name }) =>
      !name.startsWith("bare ") && results.has(key(name, label, chartTool))
    ).map((
      { name },
    ) => ({
      label: `${label} — ${name.replace("wagi-deno, ", "")}`,
      ratio: med(key(name, label, chartTool)).rps / bare,
    }));
  });
  const max = Math.max(0.5, ...bars.map((b) => b.ratio));
  const width = 720, row = 26, left = 300, top = 40;
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${
      top + bars.length * row + 30
    }" font-family="sans-serif" font-size="12">`,
    `<text x="10" y="20" font-size="14">req/s relative to bare Deno.serve (${
      toolName[chartTool]
    })</text>`,
    ...bars.map((b, i) => {
      const y = top + i * row;
      const w = ((width - left - 60) * b.ratio) / max;
      return `<text x="10" y="${y + 15}">${b.label}</text>` +
        `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="18" fill="#4a7"/>` +
        `<text x="${(left + w + 5).toFixed(1)}" y="${y + 14}">${b.ratio.toFixed(3)}x</text>`;
    }),
    `<line x1="${left + ((width - left - 60) * 0.5) / max}" y1="${top - 5}" x2="${
      left + ((width - left - 60) * 0.5) / max
    }" y2="${top + bars.length * row}" stroke="#c33" stroke-dasharray="4"/>`,
    `<text x="${left + ((width - left - 60) * 0.5) / max + 4}" y="${
      top + bars.length * row + 15
    }" fill="#c33">0.5x target</text>`,
    `</svg>`,
  ].join("\n");
  await Deno.writeTextFile(`${ROOT}test/bench/chart.svg`, svg + "\n");
}
