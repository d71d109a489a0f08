/**
 * Running a component on the server's own thread first, as WAGI modules are (see
 * inline/executor.ts): a run that would wait (a clock's sleep), write more than is kept here, or
 * take longer than its budget is abandoned ({@link MoveToPool}) and done again from the start in
 * the pool. A component's only effects are its output (kept here until the run ends) and its
 * outbound requests, and a run here is abandoned as it is about to make one (before it is made):
 * so a run redone elsewhere is indistinguishable from a first one. A component that can make
 * them runs here through jco's code without JSPI ({@link ComponentParts.firstTry}); in the pool,
 * where it may wait for the answer, through the code with it.
 * @module
 */

import { HostBudget, MoveToPool } from "../inline/policy.ts";
import { INLINE_HOST_BUDGET, type InlineResult, type InlineSpec } from "../inline/runner.ts";
import { ScratchSink } from "../inline/scratch_sink.ts";
import { MAX_STDERR } from "../run/contract.ts";
import type { ComponentParts } from "../run/module_component.ts";
import type { OutputSink } from "../wasi/descriptors.ts";
import { BytesSource, CollectingSink } from "../wasi/streams.ts";
import { PREEMPT_FUEL } from "../wasm/contract.ts";
import { ComponentRunner } from "./runner.ts";

/** How long a run may hold the server's thread before it is redone in the pool. */
const INLINE_BUDGET_MS = 20;
/**
 * The first run's budget: the engine still compiles the component's functions then. Making an
 * instance has a budget of this size too, apart from the run's: a JavaScript engine's takes
 * 30–100 ms, and under the run's budget a run after a stopped one could never make one.
 */
const FIRST_RUN_BUDGET_MS = 200;

/** Thrown (as an Error, which jco's code lets through) to abandon a run. */
class Abandon extends Error {}

const NEVER_ABORTED = new AbortController().signal;

/** A component's runs on the calling thread (the server's), one at a time. */
export class InlineComponentRunner {
  readonly #runner: ComponentRunner;
  #firstRun = true;
  #budget = new HostBudget(INLINE_HOST_BUDGET);
  /** stdout, in a buffer reused by every run (the result is a view of it). */
  #stdout = new ScratchSink(this.#budget);

  constructor(module: WebAssembly.Module, parts: ComponentParts) {
    const firstTry = parts.firstTry;
    this.#runner = new ComponentRunner(
      module,
      firstTry ? { ...parts, ...firstTry, async: false, firstTry: undefined } : parts,
    );
  }

  /** Loads what a run needs (jco's code); runs are possible once this settled. */
  prepare(): Promise<void> {
    return this.#runner.prepare();
  }

  /** Runs `spec` to its end here, or says why it must be redone in the pool. */
  run(spec: InlineSpec): InlineResult | MoveToPool {
    let moved: string | undefined;
    const abandon = (why: string) => {
      moved ??= why;
      return new Abandon(why);
    };
    this.#budget.spent = 0;
    const scratch = this.#stdout;
    scratch.reset(spec.maxOutput);
    const stdout: OutputSink = {
      write(memory: Uint8Array, at: number, length: number) {
        try {
          scratch.write(memory, at, length);
        } catch (error) {
          // jco's code lets an Error through to the run (its own reasons it hands the guest).
          throw error instanceof MoveToPool ? abandon(error.reason) : error;
        }
      },
    };
    const stderr = new CollectingSink(MAX_STDERR);
    const started = performance.now();
    // Until the run's instance is ready (put back, or made), then the run's own.
    let budgetFrom = started;
    let budget = FIRST_RUN_BUDGET_MS;
    const runBudget = this.#firstRun ? FIRST_RUN_BUDGET_MS : INLINE_BUDGET_MS;
    const end = this.#runner.runSync(
      {
        args: spec.args,
        env: spec.env,
        stdin: new BytesSource(spec.stdin),
        stdout,
        stderr,
        stop: {
          check() {},
          sleep() {
            throw abandon("it sleeps");
          },
        },
      },
      {
        // Past its budget the guest is told to stop, and traps.
        refuel: () => {
          if (performance.now() - budgetFrom <= budget) return PREEMPT_FUEL;
          moved ??= `it ran longer than ${budget} ms`;
          return -1;
        },
        signal: NEVER_ABORTED,
        instanceReady() {
          budgetFrom = performance.now();
          budget = runBudget;
        },
      },
      spec.request,
      () => abandon("it makes an outbound request"),
    );
    if (moved !== undefined) return new MoveToPool(moved);
    const firstRun = this.#firstRun;
    this.#firstRun = false;
    return {
      stdout: scratch.bytes(),
      outcome: {
        exitCode: end.exitCode,
        failure: end.failure,
        stderr: stderr.bytes(),
        truncated: false,
      },
      guestMs: Math.floor(performance.now() - started),
      firstRun,
    };
  }
}
