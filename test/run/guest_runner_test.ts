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

/** Counts the instances made while `fn` runs. */
async function counting(fn: () => Promise<void>): Promise<number> {
  const Instance = WebAssembly.Instance;
  let made = 0;
  WebAssembly.Instance = class extends Instance {
    constructor(module: WebAssembly.Module, imports?: WebAssembly.Imports) {
      super(module, imports);
      made++;
    }
  };
  try {
    await fn();
  } finally {
    WebAssembly.Instance = Instance;
  }
  return made;
}

Deno.test("a kept instance starts every run on the memory and globals of a fresh one", async () => {
  const runner = await runnerOf(fixture("scribble.wat"));
  const sums: string[] = [];
  const made = await counting(async () => {
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
  const made = await counting(async () => {
    for (let i = 0; i < 3; i++) assertOk((await run(bomb, i)).end.failure);
  });
  assertEquals(made, 3);
  // A trap in a module that does not grow: the instance is not trusted again either.
  const exits = await runnerOf(fixture("exits.wasm"));
  const after = await counting(async () => {
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
    await Deno.writeTextFile(
      path,
      `(module
        (import "wasi_snapshot_preview1" "fd_write"
          (func $fd_write (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "sched_yield" (func $yield (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 16) "Content-Type: text/plain\\n\\nstarts: 0\\n")
        (func $count
          ${call}
          (i32.store8 (i32.const 50) (i32.add (i32.load8_u (i32.const 50)) (i32.const 1))))
        (start $count)
        (func (export "_start")
          (i32.store (i32.const 0) (i32.const 16))
          (i32.store (i32.const 4) (i32.const 36))
          (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`,
    );
    const runner = await runnerOf(path);
    counts.push(
      await counting(async () => {
        for (let i = 0; i < 3; i++) {
          assertEquals((await run(runner, i)).text, "Content-Type: text/plain\n\nstarts: 1\n");
        }
      }),
    );
  }
  assertEquals(counts, [1, 3]);
});
