/**
 * Cold start: time from spawning the process to the first 200 on `/`, for the server started
 * by `deno task start` and as the container image starts it, against a bare Deno.serve hello
 * started the same ways in the same run. Prints medians and ratios (machines are noisy).
 *
 * Run: deno task bench-cold-start [runs]
 * @module
 */

import { fromFileUrl } from "../_paths.ts";
import { freePort } from "../_net.ts";

const ROOT = fromFileUrl(new URL("../..", import.meta.url));
const RUNS = Number(Deno.args[0] ?? 7);

/** Milliseconds from spawn to the first 200 on `/`. */
async function coldStart(args: string[]): Promise<number> {
  const port = freePort();
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { PORT: String(port), DENO_NO_UPDATE_CHECK: "1" },
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    for (;;) {
      const response = await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined);
      if (response) {
        await response.body?.cancel();
        if (response.status === 200) return performance.now() - started;
      }
      await new Promise((resolve) => setTimeout(resolve, 2));
      if (performance.now() - started > 30_000) throw new Error(`no 200 from ${args.join(" ")}`);
    }
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

const dockerfile = await Deno.readTextFile(`${ROOT}Dockerfile`);
const imageCommand: string[] = JSON.parse(dockerfile.match(/^CMD (\[.+\])$/m)![1]).slice(1);
const bareRun = ["run", "--cached-only", "--allow-all", "test/bench/bare_hello.ts"];
const cases: [string, string[]][] = [
  ["wagi-deno, deno task start", ["task", "start"]],
  ["bare Deno.serve, deno task", ["task", "bare-hello"]],
  ["wagi-deno, as the image starts it", imageCommand],
  ["bare Deno.serve, deno run", bareRun],
];

// Warm the cache once so that every case measures a start, not a download.
for (const [, args] of cases) await coldStart(args);
const results = new Map<string, number[]>(cases.map(([name]) => [name, []]));
for (let run = 0; run < RUNS; run++) {
  for (const [name, args] of cases) results.get(name)!.push(await coldStart(args));
}
const medians = new Map([...results].map(([name, times]) => [name, median(times)]));
console.log(`Cold start to the first 200 on /, median of ${RUNS} runs (ms):\n`);
console.log("| how it starts | wagi-deno | bare Deno.serve | ratio |");
console.log("|---|---|---|---|");
for (
  const [label, ours, bare] of [
    ["deno task start", "wagi-deno, deno task start", "bare Deno.serve, deno task"],
    ["the image's CMD", "wagi-deno, as the image starts it", "bare Deno.serve, deno run"],
  ]
) {
  const a = medians.get(ours)!;
  const b = medians.get(bare)!;
  console.log(`| ${label} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(a / b).toFixed(2)}x |`);
}
