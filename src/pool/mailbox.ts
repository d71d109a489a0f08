/**
 * A mailbox: one block of shared memory through which the pool hands a run to a worker and the
 * worker answers, instead of messages (a message costs both threads a copy, an allocation and a
 * trip through their event loops; this is most of what a short run in the pool used to cost).
 * The job (its arguments, environment and a small request body), and the answer (how the guest
 * ended, its stderr and, when it ended having written little, all of its stdout) are written in
 * place. A run whose output must stream says so and goes on through its slot's stdout ring.
 * Each slot of the job queue is one (see job_queue.ts).
 * @module
 */

import type { JobSpec, RunReport } from "./protocol.ts";
import { MAX_STDERR } from "../run/contract.ts";
import { NO_BYTES } from "../wasi/streams.ts";

/** Header words (Int32). */
const STATE = 0;
const RUN_ID = 1;
const MODULE_ID = 2;
const JOB_BYTES = 3;
const STDIN_BYTES = 4;
const EXIT_CODE = 5;
const FLAGS = 6;
const STDOUT_BYTES = 7;
const STDERR_BYTES = 8;
const FAILURE_BYTES = 9;
/**
 * Byte offset of the word that stops the run in this mailbox (a run control block of its own:
 * a stop meant for one job can never reach the next job its worker takes).
 */
export const STOP_WORD_AT = 40;
/** Float64 at this byte offset: the guest's memory at its end. */
const MEMORY_AT = 64;
const HEADER_BYTES = 72;

/** Nothing posted; the worker waits. */
export const IDLE = 0;
/** A job is posted; the worker runs it. */
export const POSTED = 1;
/** The run's output streams through its slot's ring; the job goes on. */
export const STREAMING = 2;
/** The run ended: the answer is in the mailbox. */
export const DONE = 3;

const TRUNCATED = 1;
const STOPPED = 2;
/** All of the run's stdout is in the mailbox (it never streamed). */
const WHOLE = 4;
const FAILED = 8;

/** Room for the job (and a request body) going in, and for a run's whole stdout coming back. */
export const EXCHANGE_BYTES = 64 * 1024;
/** Room for a run's stderr (kept up to this much) and the failure's text. */
const STDERR_ROOM = MAX_STDERR;
const FAILURE_ROOM = 4 * 1024;

/**
 * Bytes of shared memory a mailbox takes (mostly never touched, so never resident), rounded
 * up so that mailboxes may follow each other in one buffer.
 */
export const MAILBOX_BYTES =
  Math.ceil((HEADER_BYTES + EXCHANGE_BYTES + STDERR_ROOM + FAILURE_ROOM) / 64) * 64;

/** What a job in the mailbox carries besides its ids and body. */
export type MailedJob = JobSpec;

/** A job as the worker reads it from its mailbox. */
export interface ReceivedJob extends MailedJob {
  runId: number;
  moduleId: number;
  /** The whole request body (a copy), or null for none. */
  stdin: Uint8Array | null;
}

/** A run's answer as the pool reads it. */
export interface MailedReport extends RunReport {
  /** All of stdout, when the run never streamed. */
  stdout?: Uint8Array<ArrayBuffer>;
}

/** How the failure of a run whose worker failed by itself begins. */
export const WORKER_FAILED = "worker failed";

/** The report of a run whose worker failed by itself (its script did not load, say). */
export function workerFailed(why: string): RunReport {
  return {
    exitCode: 0,
    failure: `${WORKER_FAILED}: ${why}`,
    memoryBytes: Infinity,
    stderr: NO_BYTES,
    truncated: false,
    stopped: false,
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Both threads' view of one mailbox. */
export class Mailbox {
  readonly #words: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #memory: Float64Array;

  /** The mailbox in `buffer` from `byteOffset` (a multiple of 8), {@link MAILBOX_BYTES} long. */
  constructor(
    readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(MAILBOX_BYTES),
    byteOffset = 0,
  ) {
    this.#words = new Int32Array(buffer, byteOffset, HEADER_BYTES / 4);
    this.#memory = new Float64Array(buffer, byteOffset + MEMORY_AT, 1);
    this.#bytes = new Uint8Array(
      buffer,
      byteOffset + HEADER_BYTES,
      MAILBOX_BYTES - HEADER_BYTES,
    );
  }

  /** The mailbox's state: {@link IDLE}, {@link POSTED}, {@link STREAMING} or {@link DONE}. */
  get state(): number {
    return Atomics.load(this.#words, STATE);
  }

  /** The id of the module of the job posted. */
  get moduleId(): number {
    return this.#words[MODULE_ID];
  }

  /**
   * Pool: posts a job, or returns false when it does not fit (the job then goes as a message).
   * The body must be bytes already, and every worker must hold the module (Workers.announce).
   */
  post(runId: number, moduleId: number, job: MailedJob, stdin: Uint8Array | null): boolean {
    const text = JSON.stringify(job);
    // Three bytes at most per UTF-16 unit: checked before writing.
    if (text.length * 3 + (stdin?.length ?? 0) > EXCHANGE_BYTES) return false;
    const { written } = encoder.encodeInto(text, this.#bytes);
    const words = this.#words;
    words[RUN_ID] = runId;
    words[MODULE_ID] = moduleId;
    words[JOB_BYTES] = written;
    words[STDIN_BYTES] = stdin ? stdin.length : -1;
    if (stdin) this.#bytes.set(stdin, written);
    Atomics.store(words, STATE, POSTED);
    return true;
  }

  /** Worker: the job posted (a copy: the mailbox is the answer's next). */
  job(): ReceivedJob {
    const words = this.#words;
    const jobBytes = words[JOB_BYTES];
    const stdinBytes = words[STDIN_BYTES];
    const job = JSON.parse(decoder.decode(this.#bytes.subarray(0, jobBytes))) as MailedJob;
    return {
      ...job,
      runId: words[RUN_ID],
      moduleId: words[MODULE_ID],
      stdin: stdinBytes < 0 ? null : this.#bytes.slice(jobBytes, jobBytes + stdinBytes),
    };
  }

  /**
   * Worker: says the run's output streams through its slot's ring from now on (the pool
   * learns it through its completions, see completions.ts).
   */
  streaming(): void {
    Atomics.store(this.#words, STATE, STREAMING);
  }

  /**
   * Worker (or the pool, for a failed worker or a withdrawn job): answers; `stdout` is all of
   * it when the run never streamed.
   */
  answer(report: RunReport, stdout: Uint8Array | undefined): void {
    const words = this.#words;
    const bytes = this.#bytes;
    let flags = (report.truncated ? TRUNCATED : 0) | (report.stopped ? STOPPED : 0);
    if (stdout) {
      bytes.set(stdout.subarray(0, EXCHANGE_BYTES));
      words[STDOUT_BYTES] = Math.min(stdout.length, EXCHANGE_BYTES);
      flags |= WHOLE;
    }
    const stderr = report.stderr.subarray(0, STDERR_ROOM);
    bytes.set(stderr, EXCHANGE_BYTES);
    words[STDERR_BYTES] = stderr.length;
    if (report.failure !== undefined) {
      flags |= FAILED;
      const room = bytes.subarray(EXCHANGE_BYTES + STDERR_ROOM);
      words[FAILURE_BYTES] = encoder.encodeInto(report.failure, room).written;
    }
    words[EXIT_CODE] = report.exitCode;
    words[FLAGS] = flags;
    this.#memory[0] = report.memoryBytes;
    Atomics.store(words, STATE, DONE);
  }

  /**
   * Pool: answers on behalf of a worker that failed by itself, if it had a job: it never
   * will, and the run waiting for it ends with this.
   */
  fail(why: string): void {
    const state = this.state;
    if (state === POSTED || state === STREAMING) this.answer(workerFailed(why), undefined);
  }

  /** Pool: the answer (copied out: the mailbox serves the next run). */
  report(): MailedReport {
    const words = this.#words;
    const bytes = this.#bytes;
    const flags = words[FLAGS];
    const stderrBytes = words[STDERR_BYTES];
    return {
      exitCode: words[EXIT_CODE],
      ...(flags & FAILED
        ? {
          failure: decoder.decode(
            bytes.subarray(EXCHANGE_BYTES + STDERR_ROOM).subarray(0, words[FAILURE_BYTES]),
          ),
        }
        : {}),
      stderr: stderrBytes === 0
        ? NO_BYTES
        : bytes.slice(EXCHANGE_BYTES, EXCHANGE_BYTES + stderrBytes),
      truncated: (flags & TRUNCATED) !== 0,
      stopped: (flags & STOPPED) !== 0,
      memoryBytes: this.#memory[0],
      ...(flags & WHOLE ? { stdout: bytes.slice(0, words[STDOUT_BYTES]) } : {}),
    };
  }

  /** Pool: the mailbox is free for the next job. */
  clear(): void {
    Atomics.store(this.#words, STATE, IDLE);
  }
}
