/**
 * The pool's runner keeps one instance per module between runs and puts it back first: every
 * run must still see a fresh instance, byte for byte, and an instance that cannot be put back
 * (grown, trapped, a start function that called the host) must be made anew.
 * @module
 */

import { assertEquals, assertOk } from "../_assert.ts";
import { fixture } from "../_fixtures.ts";
import { GuestRunner } from "../../src/run/guest.ts";
import { ModuleCache } from "../../src/run/module_cache.ts";
import { reuseInfo } from "../../src/run/module_info.ts";
import { BytesSource, CollectingSink } from "../../src/wasi/streams.ts";
import { tempDir } from "../_temp.ts";
import { countingInstances, startCounter, STARTED_ONCE } from "../_instances.ts";

const cache = new ModuleCache({ preemptible: true });

/** A runner of a fixture compiled as the server compiles it (preemptible). */
async function runnerOf(path: string): Promise<GuestRunner> {
  const module = await cache.load(path);
  return new GuestRunner(module, reuseInfo(module));
}

async function run(runner: GuestRunner, i: number, entrypoint = "_start") {
  const stdout = new CollectingSink();
  const end = await runner.run(entrypoint, {
    args: ["/scribble", `run=${i}`.repeat(i + 1)],
    env: [["QUERY_STRING", `q=${"x".repeat(i * 7)}`], ["RUN", String(i)]],
    stdin: new BytesSource(new TextEncoder().encode(`${i + 1}${"stdin".repeat(i)}`)),
    stdout,
    stderr: new CollectingSink(),
    preopens: [],
  });
  return { end, text: new TextDecoder().decode(stdout.bytes()) };
}

Deno.test("a kept instance starts every run on the memory and globals of a fresh one", async () => {
  const runner = await runnerOf(fixture("scribble.wat"));
  const sums: string[] = [];
  const made = await countingInstances(async () => {
    for (let i = 0; i < 6; i++) {
      const { end, text } = await run(runner, i);
      assertEquals(end.failure, undefined);
      sums.push(text.slice(26).trim());
    }
  });
  assertEquals(new Set(sums).size, 1, `checksums differ between runs: ${sums.join(" ")}`);
  assertEquals(made, 1, "one instance served every run");
});

Deno.test("state a run leaves in static memory is gone at the next run", async () => {
  const runner = await runnerOf(fixture("remember.wasm"));
  for (let i = 0; i < 3; i++) {
    const { text } = await run(runner, i);
    assertEquals(text, "Content-Type: text/plain\n\nprevious: []\n");
  }
});

Deno.test("an instance that grew its memory, or trapped, is made anew for the next run", async () => {
  // Grows until refused, then traps.
  const bomb = await runnerOf(fixture("membomb.wat"));
  const made = await countingInstances(async () => {
    for (let i = 0; i < 3; i++) assertOk((await run(bomb, i)).end.failure);
  });
  assertEquals(made, 3);
  // A trap in a module that does not grow: the instance is not trusted again either.
  const exits = await runnerOf(fixture("exits.wasm"));
  const after = await countingInstances(async () => {
    assertOk((await run(exits, 0, "trap")).end.failure);
    assertEquals((await run(exits, 1, "exit_zero")).end.failure, undefined);
    assertEquals((await run(exits, 2, "exit_zero")).end.failure, undefined);
  });
  assertEquals(after, 2, "a new instance after the trap, then it is kept");
});

Deno.test("a start function that called the host means an instance per run; a silent one does not", async () => {
  const dir = await tempDir();
  const counts: number[] = [];
  for (const call of ["", "(drop (call $yield))"]) {
    const path = `${dir}/start${counts.length}.wat`;
    await Deno.writeTextFile(path, startCounter(call));
    const runner = await runnerOf(path);
    counts.push(
      await countingInstances(async () => {
        for (let i = 0; i < 3; i++) assertEquals((await run(runner, i)).text, STARTED_ONCE);
      }),
    );
  }
  assertEquals(counts, [1, 3]);
});
