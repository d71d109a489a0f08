/**
 * Turning a running guest into an HTTP response while it still runs: the header block is read
 * from the start of stdout, the response is sent as soon as it is complete, and the rest of
 * stdout streams through with backpressure. Failures before the header block is complete get
 * a status (500, 504, 413); after it, the response is cut off and the reason logged.
 * @module
 */

import {
  bodyStart,
  type CgiOutputParser,
  cgiResponse,
  headerLines,
  lengthMismatch,
  parseCgiHead,
} from "../cgi/response.ts";
import type { Execution, RunOutcome } from "../run/contract.ts";
import type { Logger } from "./logger.ts";
import type { Spooler } from "./spool.ts";
import type { BodyBudget } from "./request_body.ts";

/** True when `promise` has not resolved yet (it must not reject). */
async function isPending(promise: Promise<unknown>): Promise<boolean> {
  const marker = Symbol();
  // An already-resolved `promise` wins: race settles with the first reaction queued.
  return await Promise.race([promise, marker]) === marker;
}

/**
 * How long a complete header block waits for the guest to end before it is sent: long enough
 * for a module that writes everything and exits, short enough not to delay a streaming one.
 */
const HOLD_STATUS_MS = 100;

/** Body output held back, with the status, while waiting to see whether the guest ends. */
const MAX_HELD_BYTES = 64 * 1024;

/** Size of the first reads from the guest's stdout, then of the later ones. */
const FIRST_CHUNK_BYTES = 4 * 1024;
const CHUNK_BYTES = 64 * 1024;

/** Stdout read while looking for the end of the header block before giving up on it. */
const MAX_HEAD_BYTES = 64 * 1024;

/** Names the request and module in log lines: a string, or anything that becomes one. */
export type Where = string | { toString(): string };

/** A plain-text response, for the server's own answers (errors, health). */
export const text = (body: string, status: number): Response =>
  new Response(body, { status, headers: { "content-type": "text/plain;charset=UTF-8" } });

/** The error response for a guest that failed before its header block was complete. */
export function failureResponse(outcome: RunOutcome): Response | undefined {
  if (outcome.stop === "body-too-large") return text("Payload Too Large\n", 413);
  if (outcome.stop === "server-stopping") {
    return text("Service Unavailable: shutting down\n", 503);
  }
  if (outcome.stop === "timeout") return text(`Gateway Timeout: ${outcome.failure}\n`, 504);
  if (outcome.failure !== undefined || outcome.exitCode !== 0) {
    return text("Internal Server Error\n", 500);
  }
  return undefined;
}

/** Why a finished guest counts as failed, for the log; undefined when it did not fail. */
export function failureReason(outcome: RunOutcome): string | undefined {
  if (outcome.failure !== undefined) return outcome.failure;
  if (outcome.exitCode !== 0) return `exited with code ${outcome.exitCode}`;
  return undefined;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The response for a run that has already ended, with all of its stdout. */
export function respondFinished(
  finished: { stdout: Uint8Array<ArrayBuffer>; outcome: RunOutcome },
  where: Where,
  logger: Logger,
  parser: CgiOutputParser,
): Response {
  const failed = failureResponse(finished.outcome);
  if (failed) {
    // A client that went away has no one to answer, and nothing went wrong to log.
    if (finished.outcome.stop !== "cancelled") {
      logger.error(`${where}: ${failureReason(finished.outcome)}`);
    }
    return failed;
  }
  const output = parser.parse(finished.stdout);
  for (const warning of output.warnings) logger.warn(`${where}: ${warning}`);
  return output.response;
}

/** What making a streamed response needs besides the run. */
export interface RespondContext {
  logger: Logger;
  /** The cap the executor enforces, named when a response is cut. */
  maxResponseBytes: number;
  parser: CgiOutputParser;
  spooler: Spooler;
  /**
   * The memory request bodies share: a response may start before its upload has ended when the
   * rest of the upload, which Deno then reads into memory, fits in it (see spool.ts).
   */
  bodyBudget?: BodyBudget;
}

/**
 * The response for `execution`; `where` names the route and module in log lines.
 * `declaredBody` is the length the request declared for its body, if it did.
 */
export async function respond(
  execution: Execution,
  where: Where,
  context: RespondContext,
  declaredBody?: number,
): Promise<Response> {
  const { logger, maxResponseBytes, parser } = context;
  const reader = execution.stdout.getReader({ mode: "byob" });
  // Most CGI output is small: the first reads use a small buffer, later ones a large one.
  let reads = 0;
  const read = (into = new Uint8Array(reads++ < 2 ? FIRST_CHUNK_BYTES : CHUNK_BYTES)) =>
    reader.read(into);
  let head: Uint8Array = new Uint8Array();
  let start = -1;
  for (;;) {
    const { value, done } = await read();
    if (done) break;
    head = head.length === 0 ? value : concat(head, value);
    start = bodyStart(head);
    if (start !== -1 || head.length > MAX_HEAD_BYTES) break;
  }

  if (start === -1) {
    // The guest ended (or wrote 64 KiB) without finishing its header block: answer whole.
    reader.cancel().catch(() => {});
    if (head.length > MAX_HEAD_BYTES) execution.cancel();
    const outcome = await execution.done;
    const failed = failureResponse(outcome);
    if (failed && head.length <= MAX_HEAD_BYTES) {
      if (outcome.stop !== "cancelled") logger.error(`${where}: ${failureReason(outcome)}`);
      return failed;
    }
    const output = parser.parse(new Uint8Array(head));
    for (const warning of output.warnings) logger.warn(`${where}: ${warning}`);
    return output.response;
  }

  const parsed = parseCgiHead(headerLines(head, start));
  const warnings = parsed.error ? parsed.error.warnings : parsed.warnings;
  for (const warning of warnings) logger.warn(`${where}: ${warning}`);
  if (parsed.error) {
    reader.cancel().catch(() => {});
    execution.cancel();
    return parsed.error.response;
  }

  // While the upload is still arriving, stdout waits in a file (see spool.ts), unless what Deno
  // reads of it into memory once the response starts is bounded (a declared length) and fits
  // in the memory bodies share: held until the upload has been read and the run has ended.
  let prefix: ReadableStream<Uint8Array> | Uint8Array = head.subarray(start);
  let nextRead: Promise<ReadableStreamReadResult<Uint8Array>> | undefined;
  if (await isPending(execution.stdinDone)) {
    const budget = context.bodyBudget;
    if (declaredBody !== undefined && budget?.take(declaredBody)) {
      Promise.allSettled([execution.stdinDone, execution.done]).then(() =>
        budget.give(declaredBody)
      );
    } else {
      const spooled = await context.spooler.spool(prefix, read, execution.stdinDone);
      prefix = spooled.stream;
      nextRead = spooled.ended
        ? Promise.resolve({ done: true, value: undefined })
        : spooled.pending;
    }
  }
  nextRead ??= read();

  // Hold the status briefly: a guest that ends right after its output (as most CGI modules
  // do) still gets WAGI's status for a failure, while one that goes on running streams. The
  // output that arrives meanwhile (up to 64 KiB) is held and sent first.
  const held: Uint8Array[] = [];
  let heldBytes = 0;
  let outcome: RunOutcome | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const holdOver = new Promise<"held">((resolve) => {
    timer = setTimeout(() => resolve("held"), HOLD_STATUS_MS);
  });
  const ended = execution.done.then((result) => ({ outcome: result }));
  while (heldBytes <= MAX_HELD_BYTES) {
    const next = await Promise.race([nextRead!.then((read) => ({ read })), ended, holdOver]);
    if (next === "held") break;
    if ("outcome" in next) {
      outcome = next.outcome;
      break;
    }
    if (next.read.done) {
      outcome = await execution.done;
      break;
    }
    held.push(next.read.value);
    heldBytes += next.read.value.length;
    nextRead = read();
  }
  clearTimeout(timer);
  const failed = outcome && failureResponse(outcome);
  if (failed) {
    reader.cancel().catch(() => {});
    if (prefix instanceof ReadableStream) prefix.cancel().catch(() => {});
    if (outcome!.stop !== "cancelled") logger.error(`${where}: ${failureReason(outcome!)}`);
    return failed;
  }

  let sent = 0;
  const opening = prefix instanceof ReadableStream ? prefix.getReader() : undefined;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      if (prefix instanceof Uint8Array && prefix.length > 0) {
        controller.enqueue(prefix);
        sent += prefix.length;
      }
    },
    async pull(controller) {
      if (opening) {
        const spooled = await opening.read();
        if (!spooled.done) {
          sent += spooled.value.length;
          controller.enqueue(spooled.value);
          return;
        }
      }
      const heldChunk = held.shift();
      if (heldChunk) {
        sent += heldChunk.length;
        controller.enqueue(heldChunk);
        return;
      }
      const { value, done } = await nextRead!;
      nextRead = read();
      if (!done) {
        sent += value.length;
        controller.enqueue(value);
        return;
      }
      // Stdout ended: the guest finished, or was stopped. The status is already sent, so a
      // failure can only cut the response short.
      const outcome = await execution.done;
      const reason = failureReason(outcome) ??
        (outcome.truncated ? `response cut off at the ${maxResponseBytes}-byte cap` : undefined);
      const declared = parsed.declaredLength;
      if (reason === undefined && declared !== undefined && declared !== sent) {
        logger.warn(`${where}: ${lengthMismatch(declared, sent)}`);
      }
      if (reason === undefined) controller.close();
      else {
        if (outcome.stop !== "cancelled") {
          logger.error(`${where}: ${reason} after ${sent} body bytes were sent; response cut off`);
        }
        // Erroring the body is what cuts the response short. Deno prints the value it is
        // given: a short line rather than an Error's stack trace.
        controller.error(`response cut off: ${where}`);
      }
    },
    cancel() {
      // The client went away: stop the guest rather than let it write to nobody.
      opening?.cancel().catch(() => {});
      reader.cancel().catch(() => {});
      execution.cancel();
    },
  }, { highWaterMark: 0 });
  return cgiResponse(parsed, body);
}
