/**
 * The messages between the worker pool and its guest workers, derived from the run contract:
 * a job is a run's spec with its streams replaced by rings; a report is its outcome.
 * @module
 */

import type { RingBuffer } from "./byte_ring.ts";
import type { RunOutcome, RunSpec } from "../run/contract.ts";

/** Pool → worker: run one guest. */
export type RunJob =
  & Pick<RunSpec, "entrypoint" | "args" | "env" | "preopens" | "maxOutput" | "outbound">
  & {
    moduleId: number;
    /** Sent the first time a worker runs this module; it keeps it afterwards. */
    module?: WebAssembly.Module;
    stdin: RingBuffer;
    stdout: RingBuffer;
    /** stderr bytes kept at most. */
    maxStderr: number;
  };

/** Worker → pool: how the guest ended. */
export type RunReport = Pick<RunOutcome, "exitCode" | "failure" | "stderr" | "truncated"> & {
  /** The guest's linear memory size at the end: large ones have their worker replaced. */
  memoryBytes: number;
};
