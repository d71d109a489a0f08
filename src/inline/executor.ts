/**
 * The server's executor: each run is first tried on the server's own thread, where a short
 * module costs a function call instead of a hand-off to a worker; a run that cannot finish
 * there without a lasting effect (see policy.ts) is redone in the worker pool, which streams
 * and preempts. Routes whose runs keep moving to the pool, or take long enough to hold
 * up other requests, are sent there directly for a while: they do not pay for the attempt each
 * time, and heavy modules run in parallel on the pool's threads.
 * @module
 */

import type { Execution, Executor, RunOutcome, RunSpec } from "../run/contract.ts";
import { type InlineResult, InlineRunner, type InlineSpec } from "./runner.ts";
import { MoveToPool } from "./policy.ts";
import type { InlineModule } from "./variants.ts";
import { NO_BYTES } from "../wasi/streams.ts";

/** Request bodies up to this size may be run on the server's thread (they are read first). */
const INLINE_MAX_BODY_BYTES = 64 * 1024;

/** stdout kept in memory for a run on the server's thread; more and it is redone in the pool. */
const INLINE_MAX_OUTPUT_BYTES = 1024 * 1024;

/**
 * A run on the server's thread that took longer than this (measured in whole milliseconds)
 * holds up every other request meanwhile: its route's next runs go to the pool, where they
 * also run in parallel.
 */
const INLINE_SLOW_MS = 2;

/** How much longer than {@link INLINE_SLOW_MS} a module's first run here may take. */
const FIRST_RUN_FACTOR = 10;

/**
 * Slow runs in a row that move a route: one slow run may be the server's own pause (a garbage
 * collection, the engine optimising code) and says little about the module.
 */
const SLOW_RUNS_TO_MOVE = 2;

/** A single run this many times over the limit moves its route at once: it is heavy. */
const HEAVY_FACTOR = 5;

/** Runs a route skips after moving to the pool: doubles each time, up to the maximum. */
const FIRST_BACKOFF = 16;
const MAX_BACKOFF = 4096;

/**
 * Whether a run that took `guestMs` (over `limit`) moves its route to the pool: the second
 * slow run in a row does, and so does one far over the limit.
 */
export function slowRunMoves(route: RouteState, guestMs: number, limit: number): boolean {
  if (++route.slowRuns < SLOW_RUNS_TO_MOVE && guestMs <= limit * HEAVY_FACTOR) return false;
  route.slowRuns = 0;
  return true;
}

/** A route's recent history on the server's thread. */
export interface RouteState {
  /** Runs still to send straight to the pool. */
  skip: number;
  /** What `skip` is set to after the next move to the pool. */
  backoff: number;
  /** Slow runs here in a row, the last one included. */
  slowRuns: number;
}

/** What the executor reports about runs that moved to the pool (for the log and tests). */
export type MoveListener = (group: string | undefined, reason: string) => void;

/** What runs a module's runs on the server's thread. */
export interface InlineRun {
  run(spec: InlineSpec): InlineResult | MoveToPool;
}

/** Where the executor finds a module's variant for the server's thread (see variants.ts). */
export interface VariantSource {
  /**
   * A ready runner for a module that is not a WAGI module (a component), if it has one; asked
   * before {@link variantOf}.
   */
  runnerOf?(module: WebAssembly.Module): InlineRun | undefined;
  /** The ready variant of `module`; undefined when it has none (yet). */
  variantOf(module: WebAssembly.Module): InlineModule | undefined;
  /** Settles when the variant of `module`, now being prepared, is ready or known impossible. */
  preparing?(module: WebAssembly.Module): Promise<unknown> | undefined;
}

/** Tries each run on the calling thread first, then in `pool`. */
export class InlineFirstExecutor implements Executor {
  #runners = new WeakMap<WebAssembly.Module, InlineRun>();
  #routes = new Map<string, RouteState>();
  #closed = false;

  constructor(
    readonly pool: Executor,
    readonly variants: VariantSource,
    readonly onMove: MoveListener = () => {},
    /** Runs here longer than this send their route to the pool for a while. */
    readonly slowMs = INLINE_SLOW_MS,
  ) {}

  #runner(module: WebAssembly.Module): InlineRun | undefined {
    let runner = this.#runners.get(module);
    if (!runner) {
      runner = this.variants.runnerOf?.(module);
      if (!runner) {
        const variant = this.variants.variantOf(module);
        if (!variant) return undefined;
        runner = new InlineRunner(variant);
      }
      this.#runners.set(module, runner);
    }
    return runner;
  }

  /** Bodies up to this size are read first, so that their runs can be tried here. */
  readonly wholeStdinBytes = INLINE_MAX_BODY_BYTES;

  run(spec: RunSpec): Execution {
    const stdin = spec.stdin;
    // A streamed body, or one over the cap (the pool stops such a run), is the pool's; so is
    // every run once closed (the pool answers that the server is stopping).
    if (
      stdin instanceof ReadableStream || (stdin && stdin.length > spec.maxStdin) || this.#closed
    ) {
      return this.pool.run(spec);
    }
    const route = this.#routes.get(spec.group ?? "");
    if (route && route.skip > 0) {
      route.skip--;
      return this.pool.run(spec);
    }
    const runner = this.#runner(spec.module);
    if (!runner) {
      // Its variant is moments away (they are prepared as modules load, from the module cache
      // on a restart): waiting beats starting the run over in a pool that may not be up yet.
      const preparing = this.variants.preparing?.(spec.module);
      if (preparing) {
        return new DeferredExecution(preparing.then(() => {
          const execution = this.run(spec);
          const finished = execution.finished;
          // Its stdout is valid only until the next run here, which may come before it is read.
          return finished
            ? new FinishedExecution(finished.stdout.slice(), finished.outcome)
            : execution;
        }));
      }
      return this.pool.run(spec);
    }
    const result = runner.run({
      entrypoint: spec.entrypoint,
      args: spec.args,
      env: spec.env,
      preopens: spec.preopens,
      maxDescriptors: spec.maxDescriptors,
      stdin: stdin ?? NO_BYTES,
      maxOutput: Math.min(spec.maxOutput, INLINE_MAX_OUTPUT_BYTES),
      request: spec.request,
    });
    if (result instanceof MoveToPool) {
      this.#moved(spec.group ?? "", result.reason);
      return this.pool.run(spec);
    }
    // A first run is judged too, against a limit that leaves room for compiling the module.
    const limit = result.firstRun ? this.slowMs * FIRST_RUN_FACTOR : this.slowMs;
    if (result.guestMs > limit) {
      if (slowRunMoves(route ?? this.#state(spec.group ?? ""), result.guestMs, limit)) {
        this.#moved(spec.group ?? "", `a run took ${result.guestMs} ms`);
      }
    } else if (route) {
      route.slowRuns = 0;
      route.backoff = Math.max(FIRST_BACKOFF, route.backoff / 2);
    }
    return new FinishedExecution(result.stdout, result.outcome);
  }

  #state(group: string): RouteState {
    let route = this.#routes.get(group);
    if (!route) {
      route = { skip: 0, backoff: FIRST_BACKOFF, slowRuns: 0 };
      this.#routes.set(group, route);
    }
    return route;
  }

  #moved(group: string, reason: string): void {
    const route = this.#state(group);
    route.skip = route.backoff;
    route.backoff = Math.min(MAX_BACKOFF, route.backoff * 2);
    this.onMove(group || undefined, reason);
  }

  forget(modules: Iterable<WebAssembly.Module>): void {
    // What runs here is kept by module in weak maps: only the pool holds modules itself.
    this.pool.forget(modules);
  }

  close(): void {
    this.#closed = true;
    this.pool.close();
  }
}

/** A promise that has settled, shared by every execution that needs one. */
const SETTLED = Promise.resolve();

/**
 * An execution that has already ended, with all of its stdout. Its stream and promise are
 * made only when asked for: the server reads `finished`.
 */
class FinishedExecution implements Execution {
  readonly finished: { stdout: Uint8Array<ArrayBuffer>; outcome: RunOutcome };
  readonly stdinDone = SETTLED;
  #done: Promise<RunOutcome> | undefined;

  constructor(stdout: Uint8Array<ArrayBuffer>, outcome: RunOutcome) {
    this.finished = { stdout, outcome };
  }

  get stdout(): ReadableStream<Uint8Array> {
    const stdout = this.finished.stdout;
    return new ReadableStream({
      type: "bytes",
      start(controller) {
        if (stdout.length > 0) controller.enqueue(stdout.slice());
        controller.close();
      },
    });
  }

  get done(): Promise<RunOutcome> {
    return this.#done ??= Promise.resolve(this.finished.outcome);
  }

  cancel(): void {}
}

/** An execution that starts once `started` gives it (a run that waited for its variant). */
class DeferredExecution implements Execution {
  readonly stdout: ReadableStream<Uint8Array>;
  readonly done: Promise<RunOutcome>;
  readonly stdinDone: Promise<void>;

  constructor(readonly started: Promise<Execution>) {
    this.done = started.then((inner) => inner.done);
    this.stdinDone = started.then((inner) => inner.stdinDone);
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    this.stdout = new ReadableStream({
      type: "bytes",
      async pull(controller) {
        reader ??= (await started).stdout.getReader();
        const { value, done } = await reader.read();
        if (done) {
          controller.close();
          // A read into the reader's own buffer is still waiting: closing alone leaves it so.
          controller.byobRequest?.respond(0);
        } else controller.enqueue(value as Uint8Array<ArrayBuffer>);
      },
      async cancel(reason) {
        await (reader ?? (await started).stdout).cancel(reason);
      },
    });
  }

  cancel(): void {
    this.started.then((inner) => inner.cancel(), () => {});
  }
}
