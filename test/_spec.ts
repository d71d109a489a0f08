/**
 * Run specs for executor tests: `_start` with no input, generous limits, and what the test
 * says besides.
 * @module
 */

import type { RunSpec } from "../src/run/contract.ts";
import { DEFAULT_OUTBOUND } from "../src/outbound_http/names.ts";

/** A run of `module`'s `_start` with argv `["guest"]`, no input, and `overrides`. */
export function runSpec(module: WebAssembly.Module, overrides: Partial<RunSpec> = {}): RunSpec {
  return {
    module,
    entrypoint: "_start",
    args: ["guest"],
    env: [],
    preopens: [],
    stdin: null,
    // Generous: pool workers run at a lower priority, and a busy test machine starves them.
    timeoutMs: 60_000,
    maxStdin: 64 * 1024 * 1024,
    maxOutput: 64 * 1024 * 1024,
    outbound: DEFAULT_OUTBOUND,
    ...overrides,
  };
}
