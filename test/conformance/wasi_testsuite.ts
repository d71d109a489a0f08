/**
 * Runs the public WASI preview1 conformance suite (WebAssembly/wasi-testsuite, a checkout of its
 * `prod/testsuite-base` branch, which holds the built tests) through `wagi-deno run`, the way the
 * suite's own wasmtime adapter does: a test's `root` directory, copied, preopened at `/`; its
 * `args` and `env`; the exit code and stdout it expects.
 *
 * Usage: deno task wasi-testsuite DIR
 * @module
 */

import { join } from "node:path";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";

const MAIN = new URL("../../src/main.ts", import.meta.url).pathname;
const SUITES = ["assemblyscript", "c", "rust"].map((language) =>
  join(language, "testsuite", "wasm32-wasip1")
);

/** A test's `.json` beside its `.wasm`; every field may be absent. */
interface TestConfig {
  root?: string;
  args?: string[];
  env?: Record<string, string>;
  exit_code?: number;
  stdout?: string;
}

/** Runs one test; returns undefined when it passed, else why not. */
async function runTest(wasm: string): Promise<string | undefined> {
  let config: TestConfig = {};
  try {
    config = JSON.parse(await Deno.readTextFile(wasm.replace(/\.wasm$/, ".json")));
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  const args = ["run", "-A", MAIN, "run", wasm];
  let scratch: string | undefined;
  if (config.root) {
    scratch = mkdtempSync(join(tmpdir(), "wasi-testsuite-"));
    cpSync(join(wasm, "..", config.root), join(scratch, "root"), { recursive: true });
    args.push("--dir", `${join(scratch, "root")}::/`);
  }
  for (const [name, value] of Object.entries(config.env ?? {})) {
    args.push("--env", `${name}=${value}`);
  }
  args.push("--", ...(config.args ?? []));
  try {
    const output = await new Deno.Command(Deno.execPath(), { args, stdin: "null" }).output();
    const stdout = new TextDecoder().decode(output.stdout);
    if (output.code !== (config.exit_code ?? 0)) {
      const stderr = new TextDecoder().decode(output.stderr).trim().split("\n").slice(-3);
      return `exit ${output.code}, expected ${config.exit_code ?? 0}: ${stderr.join(" | ")}`;
    }
    if (config.stdout !== undefined && stdout !== config.stdout) return "stdout differs";
  } finally {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
}

const dir = Deno.args[0];
if (!dir) {
  console.error("usage: deno task wasi-testsuite DIR (a checkout of prod/testsuite-base)");
  Deno.exit(2);
}
let passed = 0;
let failed = 0;
for (const suite of SUITES) {
  const names = [...Deno.readDirSync(join(dir, "tests", suite))]
    .map((entry) => entry.name).filter((name) => name.endsWith(".wasm")).sort();
  for (const name of names) {
    const why = await runTest(join(dir, "tests", suite, name));
    if (why === undefined) passed++;
    else {
      failed++;
      console.log(`FAIL ${suite}/${name}: ${why}`);
    }
  }
}
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(failed === 0 ? 0 : 1);
