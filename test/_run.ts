/**
 * Running a guest to its end on the test's thread, with its output collected.
 * @module
 */

import { runGuest } from "../src/run/guest.ts";
import type { Preopen } from "../src/wasi/state.ts";
import { BytesSource, CollectingSink } from "../src/wasi/streams.ts";

/** What a test run is given; everything but the module and entrypoint may be left out. */
export interface TestRun {
  module: WebAssembly.Module;
  entrypoint: string;
  args?: readonly string[];
  env?: readonly (readonly [string, string])[];
  stdin?: Uint8Array;
  preopens?: readonly Preopen[];
}

/** Runs `run` to its end with stdin from bytes; returns its output and how it ended. */
export async function runToEnd(run: TestRun) {
  const stdout = new CollectingSink();
  const stderr = new CollectingSink();
  const end = await runGuest(run.module, run.entrypoint, {
    args: run.args ?? [],
    env: run.env ?? [],
    stdin: new BytesSource(run.stdin ?? new Uint8Array()),
    stdout,
    stderr,
    preopens: run.preopens ?? [],
  });
  return { stdout: stdout.bytes(), stderr: stderr.bytes(), ...end };
}
