/**
 * The messages between the worker pool and its guest workers.
 * @module
 */

import type { Preopen } from "../wasi/state.ts";
import type { RingBuffer } from "./byte_ring.ts";
import type { OutboundOptions } from "../outbound_http/experimental_http.ts";

/** Pool → worker: run one guest. */
export interface GuestJob {
  moduleId: number;
  /** Sent the first time a worker runs this module; it keeps it afterwards. */
  module?: WebAssembly.Module;
  entrypoint: string;
  args: readonly string[];
  env: readonly (readonly [string, string])[];
  preopens: readonly Preopen[];
  stdin: RingBuffer;
  stdout: RingBuffer;
  /** stdout bytes kept at most; the rest is dropped and `truncated` reported. */
  maxOutput: number;
  /** stderr bytes kept at most. */
  maxStderr: number;
  outbound: OutboundOptions;
}

/** Worker → pool: how the guest ended. */
export interface GuestReport {
  exitCode: number;
  failure?: string;
  /** The guest's linear memory size at the end: large ones retire the worker. */
  memoryBytes: number;
  stderr: Uint8Array;
  /** stdout was cut: the output cap was passed, or the reader went away. */
  truncated: boolean;
}
