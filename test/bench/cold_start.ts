/**
 * Cold start: time from spawning the process to the first 200 on `/`, for the server started
 * by `deno task start` and as the container image starts it (with the DENO_DIR the image ships,
 * fresh for every start, as a new container has it), against a bare Deno.serve hello started
 * the same ways in the same run. Prints medians and ratios (machines are noisy).
 *
 * Run: deno task bench-cold-start [runs]
 * @module
 */

import { fromFileUrl } from "../_paths.ts";
import { freePort } from "../_net.ts";

const ROOT = fromFileUrl(new URL("../..", import.meta.url));
const RUNS = Number(Deno.args[0] ?? 7);

/** The start's phases as wagi-deno reported them (WAGI_START_TRACE), by name, per run. */
const phases = new Map<string, Map<string, number[]>>();

/** How a case starts: its arguments to `deno`, its directory, and its environment (made anew per start). */
interface Case {
  args: string[];
  cwd: string;
  env?: () => Promise<Record<string, string>>;
}

/** Milliseconds from spawn to the first 200 on `/`; `name` keeps its phases. */
async function coldStart({ args, cwd, env }: Case, name = ""): Promise<number> {
  const port = freePort();
  const extraEnv = await env?.() ?? {};
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env: {
      PORT: String(port),
      DENO_NO_UPDATE_CHECK: "1",
      WAGI_START_TRACE: "1",
      ...extraEnv,
    },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text().then((text) => {
    const trace = text.match(/start: (.+); total/)?.[1];
    if (!trace || !name) return;
    const byPhase = phases.get(name) ?? new Map<string, number[]>();
    phases.set(name, byPhase);
    for (const [, phase, ms] of trace.matchAll(/([a-z ]+) ([\d.]+) ms/g)) {
      byPhase.set(phase.trim(), [...(byPhase.get(phase.trim()) ?? []), Number(ms)]);
    }
  });
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
    await stderr;
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

/** Runs `command` (a shell line) in `cwd`; throws with its output when it fails. */
async function sh(command: string, cwd: string): Promise<void> {
  const bin = Deno.execPath().slice(0, Deno.execPath().lastIndexOf("/"));
  const { code, stderr } = await new Deno.Command("sh", {
    args: ["-c", command],
    cwd,
    env: { PATH: `${bin}:${Deno.env.get("PATH")}` },
    stdout: "null",
    stderr: "piped",
  }).output();
  if (code !== 0) throw new Error(`${command}: ${new TextDecoder().decode(stderr)}`);
}

// The image's /app, built as its build stage does (the same RUN line), outside a container.
const dockerfile = await Deno.readTextFile(`${ROOT}Dockerfile`);
const app = await Deno.makeTempDir({ prefix: "wagi-cold-app-" });
for (const kept of ["deno.json", "deno.lock", "src", "modules"]) {
  await sh(`cp -r '${ROOT}${kept}' '${app}/${kept}'`, ROOT);
}
await sh(dockerfile.match(/^RUN (.+)$/m)![1], app);
const imageCommand: string[] = JSON.parse(dockerfile.match(/^CMD (\[.+\])$/m)![1]).slice(1);
// A new container starts with the DENO_DIR the image ships (what the build left in .deno-run),
// never with what an earlier start added to it: each start gets a fresh copy.
const denoDirs: string[] = [];
const imageDenoDir = async () => {
  const dir = await Deno.makeTempDir({ prefix: "wagi-cold-deno-dir-" });
  denoDirs.push(dir);
  await sh(`cp -r '${app}/.deno-run/.' '${dir}/'`, app);
  return { DENO_DIR: dir };
};

// Fifty distinct modules (the hello with a custom section naming each), a route each.
const fifty = await Deno.makeTempDir({ prefix: "wagi-cold-fifty-" });
const hello = await Deno.readFile(`${ROOT}modules/hello.wasm`);
let toml = "";
for (let i = 0; i < 50; i++) {
  const name = new TextEncoder().encode(`module ${i}`);
  const section = [0, name.length + 1, name.length, ...name];
  await Deno.writeFile(`${fifty}/m${i}.wasm`, new Uint8Array([...hello, ...section]));
  toml += `[[module]]\nroute = "${i === 0 ? "/" : `/m${i}`}"\nmodule = "m${i}.wasm"\n\n`;
}
await Deno.writeTextFile(`${fifty}/modules.toml`, toml);
const fiftyCommand = ["run", "--cached-only", "--allow-all", `${ROOT}src/main.ts`];
// The image's CMD serving them instead of its own modules (an image built FROM ours with fifty
// modules, its --module-cache filled at its build: here by the warm-up start below).
const fiftyImageCommand = imageCommand.map((arg, i) =>
  imageCommand[i - 1] === "-c"
    ? `${fifty}/modules.toml`
    : imageCommand[i - 1] === "--module-cache"
    ? `${fifty}/.module-cache`
    : arg
);

const bareRun = ["run", "--cached-only", "--allow-all", `${ROOT}test/bench/bare_hello.ts`];
const cases: [string, Case][] = [
  ["wagi-deno, deno task start", { args: ["task", "start"], cwd: ROOT }],
  ["bare Deno.serve, deno task", { args: ["task", "bare-hello"], cwd: ROOT }],
  ["wagi-deno, as the image starts it", { args: imageCommand, cwd: app, env: imageDenoDir }],
  ["bare Deno.serve, deno run", { args: bareRun, cwd: ROOT }],
  ["wagi-deno, 50 modules, as the image starts it", {
    args: fiftyImageCommand,
    cwd: app,
    env: imageDenoDir,
  }],
  ["wagi-deno, 50 modules, deno run", {
    args: [...fiftyCommand, "-c", `${fifty}/modules.toml`],
    cwd: fifty,
  }],
];

try {
  // Once to warm every cache (the module cache included), so that each case measures a start.
  for (const [, start] of cases) await coldStart(start);
  const results = new Map<string, number[]>(cases.map(([name]) => [name, []]));
  for (let run = 0; run < RUNS; run++) {
    for (const [name, start] of cases) {
      results.get(name)!.push(await coldStart(start, name));
      for (const dir of denoDirs.splice(0)) await Deno.remove(dir, { recursive: true });
    }
  }
  const medians = new Map([...results].map(([name, times]) => [name, median(times)]));
  console.log(`Cold start to the first 200 on /, median of ${RUNS} runs (ms):\n`);
  console.log("| how it starts | wagi-deno | bare Deno.serve | ratio |");
  console.log("|---|---|---|---|");
  for (
    const [label, ours, bare] of [
      ["deno task start", "wagi-deno, deno task start", "bare Deno.serve, deno task"],
      [
        "the image's CMD (bundle)",
        "wagi-deno, as the image starts it",
        "bare Deno.serve, deno run",
      ],
      [
        "50 modules, the image's CMD",
        "wagi-deno, 50 modules, as the image starts it",
        "bare Deno.serve, deno run",
      ],
      [
        "50 modules, deno run src/main.ts",
        "wagi-deno, 50 modules, deno run",
        "bare Deno.serve, deno run",
      ],
    ]
  ) {
    const a = medians.get(ours)!;
    const b = medians.get(bare)!;
    console.log(`| ${label} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(a / b).toFixed(2)}x |`);
  }
  console.log(
    "\nWhere wagi-deno's start goes after the runtime's own (WAGI_START_TRACE), medians (ms):\n",
  );
  const names = [...phases.keys()];
  const phaseNames = [...new Set(names.flatMap((name) => [...phases.get(name)!.keys()]))];
  console.log(`| phase | ${names.join(" | ")} |`);
  console.log(`|---|${names.map(() => "---").join("|")}|`);
  for (const phase of phaseNames) {
    const cells = names.map((name) => {
      const times = phases.get(name)!.get(phase);
      return times ? median(times).toFixed(1) : "";
    });
    console.log(`| ${phase} | ${cells.join(" | ")} |`);
  }
} finally {
  for (const dir of denoDirs) await Deno.remove(dir, { recursive: true });
  await Deno.remove(app, { recursive: true });
  await Deno.remove(fifty, { recursive: true });
}
