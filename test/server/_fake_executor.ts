/**
 * An executor that runs nothing: each run's output and outcome are what the test scripts, so
 * that the server's modules can be tested in-process (as Hono tests an app with `request()`).
 * @module
 */

import type { Execution, Executor, RunOutcome, RunSpec } from "../../src/run/contract.ts";

/** A run's outcome with everything that was not said filled in as a clean end. */
export function outcome(overrides: Partial<RunOutcome> = {}): RunOutcome {
  return { exitCode: 0, stderr: new Uint8Array(), truncated: false, ...overrides };
}

/** What a scripted run does: ends at once with all its output, or streams it. */
export type Script =
  | { finished: string | Uint8Array<ArrayBuffer>; outcome?: RunOutcome }
  | {
    chunks: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>;
    outcome?: RunOutcome;
  };

const encode = (chunk: string | Uint8Array) =>
  typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk;

/** An executor whose runs follow `script`; it keeps every spec it was asked to run. */
export class FakeExecutor implements Executor {
  readonly specs: RunSpec[] = [];
  /** Runs cancelled by the server, by index in `specs`. */
  readonly cancelled = new Set<number>();

  constructor(
    readonly script: (spec: RunSpec) => Script,
    readonly wholeStdinBytes = 64 * 1024,
  ) {}

  run(spec: RunSpec): Execution {
    const index = this.specs.push(spec) - 1;
    const script = this.script(spec);
    if ("finished" in script) {
      const stdout = encode(script.finished) as Uint8Array<ArrayBuffer>;
      const ended = script.outcome ?? outcome();
      return {
        stdout: new Blob([stdout]).stream(),
        done: Promise.resolve(ended),
        stdinDone: Promise.resolve(),
        cancel: () => this.cancelled.add(index),
        finished: { stdout, outcome: ended },
      };
    }
    let end!: (outcome: RunOutcome) => void;
    const done = new Promise<RunOutcome>((resolve) => (end = resolve));
    const chunks = (async function* () {
      yield* script.chunks;
    })();
    const cancelled = this.cancelled;
    const finish = () =>
      end(cancelled.has(index) ? outcome({ stop: "cancelled" }) : script.outcome ?? outcome());
    const source: UnderlyingByteSource = {
      type: "bytes",
      async pull(controller) {
        const next = cancelled.has(index) ? undefined : await chunks.next();
        if (next && !next.done) return controller.enqueue(encode(next.value).slice());
        controller.close();
        // A BYOB reader waiting on a closed stream is answered by an empty respond.
        controller.byobRequest?.respond(0);
        finish();
      },
      cancel() {
        cancelled.add(index);
        finish();
      },
    };
    const stdout = new ReadableStream(source);
    return {
      stdout,
      done,
      stdinDone: Promise.resolve(),
      cancel: () => cancelled.add(index),
    };
  }

  forget(_modules: Iterable<WebAssembly.Module>): void {}

  close(): void {}
}
