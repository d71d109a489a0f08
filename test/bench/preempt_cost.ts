/**
 * What preemption costs a guest that computes: CPU-bound modules (fib(32), recursive calls
 * and no memory traffic; a memory-bound loop over 16 MiB) run as the server compiles them
 * (preemptible: metered, asking the host for fuel) and as they are, alternately, in the same
 * process; prints the median time of each and their ratio.
 *
 * Run: deno task bench-preempt [runs=15]
 * @module
 */

import { ModuleCache } from "../../src/run/module_cache.ts";
import { runGuest } from "../../src/run/guest.ts";
import { BytesSource, DISCARD } from "../../src/wasi/streams.ts";
import { fromFileUrl } from "../_paths.ts";

const ROOT = fromFileUrl(new URL("../..", import.meta.url));
const RUNS = Number(Deno.args[0] ?? 15);

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

async function timeRun(module: WebAssembly.Module): Promise<number> {
  const started = performance.now();
  const end = await runGuest(module, "_start", {
    args: [],
    env: [],
    stdin: new BytesSource(new Uint8Array()),
    stdout: DISCARD,
    stderr: DISCARD,
  });
  if (end.failure || end.exitCode !== 0) throw new Error(`run failed: ${end.failure}`);
  return performance.now() - started;
}

const plain = new ModuleCache();
const preemptible = new ModuleCache({ preemptible: true });
const rows: string[] = [];
for (const name of ["fib.wasm", "memloop.wasm"]) {
  const path = `${ROOT}test/fixtures/${name}`;
  const as = { plain: await plain.load(path), preemptible: await preemptible.load(path) };
  // Warm both: the engine's optimizing tier, and the memory once grown.
  for (let i = 0; i < 3; i++) {
    await timeRun(as.plain);
    await timeRun(as.preemptible);
  }
  const times = { plain: [] as number[], preemptible: [] as number[] };
  for (let i = 0; i < RUNS; i++) {
    times.plain.push(await timeRun(as.plain));
    times.preemptible.push(await timeRun(as.preemptible));
  }
  const a = median(times.plain);
  const b = median(times.preemptible);
  const row = `| ${name} | ${a.toFixed(1)} ms | ${b.toFixed(1)} ms | ${(b / a).toFixed(3)}x |`;
  console.log(row);
  rows.push(row);
}
console.log(
  `\n| module | as it is | preemptible | ratio |\n|---|---|---|---|\n${rows.join("\n")}\n` +
    `(medians of ${RUNS} alternating runs in one process)`,
);
