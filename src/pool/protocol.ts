/**
 * The messages between the worker pool and its guest workers, derived from the run contract:
 * a job is a run's spec with its streams replaced by rings; a report is its outcome.
 * @module
 */

import type { RingBuffer } from "./byte_ring.ts";
import type { QueueBuffers } from "./job_queue.ts";
import type { RunOutcome, RunSpec } from "../run/contract.ts";
import type { ReuseInfo } from "../run/module_info.ts";
import type { ComponentParts } from "../run/module_component.ts";

/** What of a run's spec a worker is told, whichever way the job comes. */
export type JobSpec = Pick<
  RunSpec,
  | "entrypoint"
  | "args"
  | "env"
  | "preopens"
  | "maxOutput"
  | "outbound"
  | "maxDescriptors"
  | "request"
>;

/** Pool → worker: run one guest. */
export type RunJob =
  & JobSpec
  & {
    type: "run";
    /** Unique in the pool: a stop names the run it is for. */
    runId: number;
    moduleId: number;
    /** Sent the first time a worker runs this module; it keeps it afterwards. */
    module?: WebAssembly.Module;
    /** Sent with `module`: whether and how the worker may keep an instance of it. */
    reuse?: ReuseInfo;
    /** Sent with `module` when it stands for a component: the rest of it. */
    component?: ComponentParts;
    stdin: RingBuffer;
    stdout: RingBuffer;
    /** stderr bytes kept at most. */
    maxStderr: number;
  };

/**
 * Pool → worker, once, first: its id, the control block through which its runs are stopped,
 * the block it shares with the pool (see worker_block.ts), the job queue (see job_queue.ts),
 * how it tells the pool a slot changed, and the modules every worker holds so far.
 */
export interface ControlMessage {
  type: "control";
  workerId: number;
  buffer: SharedArrayBuffer;
  block: SharedArrayBuffer;
  queue: QueueBuffers;
  /** The pool's counter of slot changes (see completions.ts). */
  completions: SharedArrayBuffer;
  modules: ModuleMessage[];
}

/**
 * Pool → every worker: hold this module (runs of it come through the queue, which any worker
 * may take).
 */
export interface ModuleMessage {
  type: "module";
  moduleId: number;
  module: WebAssembly.Module;
  reuse: ReuseInfo | undefined;
  /** Set when `module` stands for a component: the rest of it. */
  component: ComponentParts | undefined;
}

/**
 * Pool → worker: run `runId` is stopped (its control block already says so). Read only when
 * the worker's event loop is free: while the guest waits on the network.
 */
export interface StopMessage {
  type: "stop";
  runId: number;
}

/** Pool → worker: let go of these modules (no longer served after a reload). */
export interface ForgetMessage {
  type: "forget";
  moduleIds: number[];
}

/** Every message a worker gets. */
export type PoolMessage =
  | ControlMessage
  | ModuleMessage
  | RunJob
  | StopMessage
  | ForgetMessage;

/** Worker → pool: how the guest ended. */
export type RunReport = Pick<RunOutcome, "exitCode" | "failure" | "stderr" | "truncated"> & {
  /** The guest's linear memory size at the end: large ones have their worker replaced. */
  memoryBytes: number;
  /** It ended because it was stopped. */
  stopped: boolean;
};
