/**
 * The run contract: what every way of running a guest is asked (a {@link RunSpec}) and
 * answers (an {@link Execution} that ends in a {@link RunOutcome}). The server knows guests
 * only through this file; how a run happens (on the server's thread, in a worker) is behind
 * the {@link Executor} interface.
 * @module
 */

import type { Preopen } from "../wasi/state.ts";
import type { OutboundOptions } from "../outbound_http/names.ts";
import type { HttpRequestHead } from "./module_component.ts";

/** One run of a module's entrypoint, as the server asks for it. */
export interface RunSpec {
  module: WebAssembly.Module;
  entrypoint: string;
  args: readonly string[];
  env: readonly (readonly [string, string])[];
  preopens: readonly Preopen[];
  /** The guest's stdin: fed as it arrives, or already whole; null for none. */
  stdin: ReadableStream<Uint8Array> | Uint8Array | null;
  /** The guest is stopped after this long. */
  timeoutMs: number;
  /** stdin past this many bytes stops the guest (`body-too-large`). */
  maxStdin: number;
  /** stdout past this many bytes is dropped (`truncated`). */
  maxOutput: number;
  /** What the module may do with outbound HTTP. */
  outbound: OutboundOptions;
  /** Most descriptors the guest may have open (files, directories, stdio); default 1,024. */
  maxDescriptors?: number;
  /** Runs of one group (one route) share a cap on workers, see the pool's `maxPerGroup`. */
  group?: string;
  /** For an HTTP component: the request it serves (its body is `stdin`). */
  request?: HttpRequestHead;
}

/**
 * Why a run was stopped before its guest ended: its deadline passed, its request body was
 * over the cap, its client went away, or the server is shutting down.
 */
export type StopReason = "timeout" | "body-too-large" | "cancelled" | "server-stopping";

/** How a run ended. */
export interface RunOutcome {
  /** The guest's exit code: 0 when the entrypoint returned, or `proc_exit`'s value. */
  exitCode: number;
  /** Set when the run failed on the host side: a trap, a stop, a missing entrypoint, … */
  failure?: string;
  /** Set when the run was stopped, and why (`failure` says it in words). */
  stop?: StopReason;
  stderr: Uint8Array;
  /** stdout was cut short: the output cap, a stop, or a reader that went away. */
  truncated: boolean;
}

/** stderr kept per run (the rest is dropped): it only goes to the log. */
export const MAX_STDERR = 1024 * 1024;

/** A run in progress: its stdout as it is written, and how it ends. */
export interface Execution {
  /** A byte stream: read it with a BYOB reader to reuse buffers. */
  stdout: ReadableStream<Uint8Array>;
  done: Promise<RunOutcome>;
  /** Settles once the request body has been read to its end, or will not be read further. */
  stdinDone: Promise<void>;
  /** Stops the guest (the client went away). */
  cancel(): void;
  /**
   * Set when the run had already ended by the time `run` returned (it ran on the calling
   * thread): all its stdout, and how it ended. `stdout` and `done` say the same. The stdout
   * bytes may be the executor's scratch buffer: valid until its next run, so read them first.
   */
  finished?: { stdout: Uint8Array<ArrayBuffer>; outcome: RunOutcome };
  /**
   * Set by an executor that learns soon after a run starts whether it ends with all of its
   * stdout in hand: then this resolves to that stdout and the outcome (and `stdout` need not be
   * read); to undefined when the output streams (read `stdout`).
   */
  whole?: Promise<{ stdout: Uint8Array<ArrayBuffer>; outcome: RunOutcome } | undefined>;
}

/** Runs guests for the server; HTTP stays on the other side of this interface. */
export interface Executor {
  run(spec: RunSpec): Execution;
  /**
   * Request bodies up to this size are best handed over whole (read first, as a
   * `Uint8Array`) rather than streamed: such runs may end before `run` returns.
   */
  readonly wholeStdinBytes: number;
  /**
   * Lets go of what is kept for `modules`, no longer served (a reload); runs of them still
   * in progress are not affected, and a later run of one works as a first run does.
   */
  forget(modules: Iterable<WebAssembly.Module>): void;
  /** Stops every run and lets go of the executor's threads. */
  close(): void;
}
