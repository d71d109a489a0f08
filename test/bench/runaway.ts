/**
 * What a flood of runaway guests leaves behind: the C hello's throughput (`wrk -t1 -c100`) and
 * the server's RSS, measured on a fresh server, then after 1,000 requests to a module that
 * never ends (timeout 0.2 s, 20 at a time), on the same server. Prints each run and the
 * medians, and the ratios after/before: a stopped guest must not leave CPU, threads or memory
 * behind. "After" is measured once the workers the flood started have stopped (idle 30 s).
 *
 * Run: deno task bench-runaway [runs=3] [seconds=5]
 * Needs: wrk.
 * @module
 */

import { fromFileUrl } from "../_paths.ts";
import { freePort } from "../_net.ts";

const ROOT = fromFileUrl(new URL("../..", import.meta.url));
const RUNS = Number(Deno.args[0] ?? 3);
const SECONDS = Number(Deno.args[1] ?? 5);
const RUNAWAY_REQUESTS = 1000;
const AT_ONCE = 20;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];

async function rssMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+) kB/)![1]) / 1024;
}

/** The pool's worker threads (Deno names them `worker-N`). */
async function workerThreads(pid: number): Promise<number> {
  let count = 0;
  for await (const task of Deno.readDir(`/proc/${pid}/task`)) {
    const name = await Deno.readTextFile(`/proc/${pid}/task/${task.name}/comm`).catch(() => "");
    if (name.startsWith("worker-")) count++;
  }
  return count;
}

async function wrk(url: string, seconds: number): Promise<number> {
  const { stdout } = await new Deno.Command("wrk", {
    args: ["-t1", "-c100", `-d${seconds}s`, url],
  }).output();
  return Number(new TextDecoder().decode(stdout).match(/Requests\/sec:\s+([\d.]+)/)![1]);
}

const config = await Deno.makeTempFile({ suffix: ".toml" });
await Deno.writeTextFile(
  config,
  `[[module]]
route = "/hello"
module = "${ROOT}modules/hello.wasm"

[[module]]
route = "/spin"
module = "${ROOT}test/fixtures/spin.wasm"
timeout = 0.2
`,
);

const results: { before: number; after: number; rssBefore: number; rssAfter: number }[] = [];
try {
  for (let run = 1; run <= RUNS; run++) {
    const port = freePort();
    const server = new Deno.Command(Deno.execPath(), {
      args: [
        ...["run", "--allow-all", "--unstable-no-legacy-abort"],
        "--v8-flags=--max-semi-space-size=2,--no-allocation-site-pretenuring",
        ...[`${ROOT}src/main.ts`, "-c", config, "-l", `127.0.0.1:${port}`],
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const base = `http://127.0.0.1:${port}`;
    try {
      for (;;) {
        const up = await fetch(`${base}/hello`).then((r) => r.text(), () => undefined);
        if (up) break;
        await sleep(50);
      }
      // Past the first second the hello runs on the server's thread; warm it up.
      await sleep(1500);
      await wrk(`${base}/hello`, 1);
      const before = await wrk(`${base}/hello`, SECONDS);
      const rssBefore = await rssMiB(server.pid);
      const warmWorkers = await workerThreads(server.pid);

      let next = 0;
      const statuses = new Map<number, number>();
      await Promise.all(Array.from({ length: AT_ONCE }, async () => {
        while (next++ < RUNAWAY_REQUESTS) {
          const response = await fetch(`${base}/spin`);
          await response.body?.cancel();
          statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        }
      }));
      // The flood started more workers than the warm ones: they stop once idle for 30 s.
      const floodEnded = performance.now();
      while (
        await workerThreads(server.pid) > warmWorkers && performance.now() - floodEnded < 60_000
      ) {
        await sleep(1000);
      }
      const settledSeconds = (performance.now() - floodEnded) / 1000;
      await wrk(`${base}/hello`, 1);
      const after = await wrk(`${base}/hello`, SECONDS);
      const rssAfter = await rssMiB(server.pid);
      console.log(
        `run ${run}/${RUNS}: runaway answers ${JSON.stringify(Object.fromEntries(statuses))}; ` +
          `hello ${before.toFixed(0)} → ${after.toFixed(0)} req/s; ` +
          `RSS ${rssBefore.toFixed(0)} → ${rssAfter.toFixed(0)} MiB ` +
          `(measured once the extra workers had stopped, ${settledSeconds.toFixed(0)} s later)`,
      );
      results.push({ before, after, rssBefore, rssAfter });
    } finally {
      server.kill("SIGTERM");
      await server.status;
    }
  }
} finally {
  await Deno.remove(config);
}

const m = (key: keyof (typeof results)[number]) => median(results.map((r) => r[key]));
console.log(`
| after 1,000 runaway requests (timeout 0.2 s, 20 at a time) | before | after | ratio |
|---|---|---|---|
| C hello, wrk -t1 -c100, req/s | ${m("before").toFixed(0)} | ${m("after").toFixed(0)} | ${
  (m("after") / m("before")).toFixed(3)
}x |
| server RSS, MiB | ${m("rssBefore").toFixed(0)} | ${m("rssAfter").toFixed(0)} | ${
  (m("rssAfter") / m("rssBefore")).toFixed(3)
}x |
(medians of ${RUNS} runs, each on a fresh server)`);
