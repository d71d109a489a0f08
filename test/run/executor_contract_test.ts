/**
 * The behaviour every executor must have, whatever way it runs guests: the same suite runs
 * against the worker pool and against the executor that tries the server's thread first.
 * @module
 */

import { assertEquals, assertIncludes, assertOk } from "../_assert.ts";
import type { Executor, RunSpec } from "../../src/run/contract.ts";
import { ModuleCache } from "../../src/run/module_cache.ts";
import { WorkerPool } from "../../src/pool/pool.ts";
import { InlineFirstExecutor } from "../../src/inline/executor.ts";
import { InlineVariants } from "../../src/inline/variants.ts";
import { runSpec } from "../_spec.ts";
import { fixture } from "../_fixtures.ts";

const MIB = 1024 * 1024;

/** An executor under test, and how to load modules for it. */
interface Subject {
  executor: Executor;
  load(name: string): Promise<WebAssembly.Module>;
}

const SUBJECTS: Record<string, () => Subject> = {
  "the worker pool": () => {
    const cache = new ModuleCache({ preemptible: true });
    return {
      executor: new WorkerPool({ warm: 1, max: 2 }),
      load: (name) => cache.load(fixture(name)),
    };
  },
  "the inline-first executor": () => {
    const variants = new InlineVariants();
    const cache = new ModuleCache({
      preemptible: true,
      onCompiled: (compiled) => variants.add(compiled),
    });
    return {
      executor: new InlineFirstExecutor(
        new WorkerPool({ warm: 1, max: 2 }),
        variants,
        () => {},
        Infinity,
      ),
      async load(name) {
        const module = await cache.load(fixture(name));
        await variants.settled();
        return module;
      },
    };
  },
};

/** A run in a group of its own: one sent to the pool must not send the next ones there too. */
const spec = (module: WebAssembly.Module, overrides: Partial<RunSpec> = {}) =>
  runSpec(module, { maxStdin: MIB, maxOutput: MIB, group: crypto.randomUUID(), ...overrides });

/** Runs `spec` and reads all of its stdout. */
async function runAll(executor: Executor, run: RunSpec) {
  const execution = executor.run(run);
  const [stdout, outcome] = await Promise.all([
    new Response(execution.stdout).text(),
    execution.done,
  ]);
  await execution.stdinDone;
  return { stdout, outcome };
}

for (const [name, make] of Object.entries(SUBJECTS)) {
  Deno.test(`executor contract: ${name}`, async (t) => {
    const { executor, load } = make();
    try {
      await t.step("stdin in, stdout out, exit code 0, nothing stopped or cut", async () => {
        const body = new TextEncoder().encode("Content-Type: text/plain\n\nechoed");
        const { stdout, outcome } = await runAll(
          executor,
          spec(await load("cat.wasm"), {
            stdin: body,
          }),
        );
        assertEquals(stdout, "Content-Type: text/plain\n\nechoed");
        assertEquals(
          [outcome.exitCode, outcome.failure, outcome.stop, outcome.truncated],
          [0, undefined, undefined, false],
        );
      });

      await t.step("a streamed body reaches the guest whole", async () => {
        const body = new Blob(["x".repeat(200_000)]).stream();
        const { stdout } = await runAll(executor, spec(await load("cat.wasm"), { stdin: body }));
        assertEquals(stdout.length, 200_000);
      });

      await t.step("proc_exit's code and the guest's stderr come back", async () => {
        const { outcome } = await runAll(
          executor,
          spec(await load("exits.wasm"), { entrypoint: "exit_three" }),
        );
        assertEquals([outcome.exitCode, outcome.failure], [3, undefined]);
        assertEquals(
          new TextDecoder().decode(outcome.stderr),
          "exits: failing on purpose with 3\n",
        );
      });

      await t.step("a trap and a missing entrypoint are failures that say so", async () => {
        const exits = await load("exits.wasm");
        const trapped = await runAll(executor, spec(exits, { entrypoint: "trap" }));
        assertIncludes(trapped.outcome.failure ?? "", "trap");
        const missing = await runAll(executor, spec(exits, { entrypoint: "nope" }));
        assertEquals(missing.outcome.failure, "module has no exported function 'nope'");
      });

      await t.step("stdout past the cap is cut and says so", async () => {
        const body = new Uint8Array(5000).fill(0x61);
        const { stdout, outcome } = await runAll(
          executor,
          spec(await load("cat.wasm"), { stdin: body, maxOutput: 1000 }),
        );
        assertEquals(stdout.length, 1000);
        assertOk(outcome.truncated);
      });

      await t.step("a body over the cap stops the run, streamed or whole", async () => {
        const cat = await load("cat.wasm");
        for (const body of [new Blob([new Uint8Array(3000)]).stream(), new Uint8Array(3000)]) {
          const { outcome } = await runAll(executor, spec(cat, { stdin: body, maxStdin: 1000 }));
          assertEquals(outcome.stop, "body-too-large");
        }
      });

      await t.step("a guest that never ends is stopped at its deadline", async () => {
        const { outcome } = await runAll(
          executor,
          spec(await load("runaway.wat"), { timeoutMs: 300 }),
        );
        assertEquals(outcome.stop, "timeout");
        assertIncludes(outcome.failure ?? "", "timed out after 300 ms");
      });

      await t.step("a cancelled run is stopped, and says it was cancelled", async () => {
        const execution = executor.run(spec(await load("runaway.wat")));
        setTimeout(() => execution.cancel(), 100);
        const outcome = await execution.done;
        await execution.stdout.cancel();
        assertEquals(outcome.stop, "cancelled");
      });
    } finally {
      executor.close();
    }
    const closed = executor.run(spec(await load("exits.wasm")));
    await closed.stdout.cancel();
    assertEquals((await closed.done).stop, "server-stopping", "a run after close");
  });
}
