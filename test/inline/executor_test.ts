import { assertEquals, assertIncludes, assertOk } from "../_assert.ts";
import { InlineFirstExecutor, slowRunMoves } from "../../src/inline/executor.ts";
import { InlineVariants } from "../../src/inline/variants.ts";
import { ModuleCache } from "../../src/run/module_cache.ts";
import { WorkerPool } from "../../src/pool/pool.ts";
import { runSpec } from "../_spec.ts";
import { fixture } from "../_fixtures.ts";
import { tempDir } from "../_temp.ts";

const MIB = 1024 * 1024;

/**
 * A real pool and cache behind the executor; `moves` records each move to the pool. Runs are
 * not judged slow unless `slowMs` says so: a loaded test machine must not move them.
 */
function setUp(slowMs = Infinity) {
  const variants = new InlineVariants();
  const modules = new ModuleCache({
    preemptible: true,
    onCompiled: (compiled) => variants.add(compiled),
  });
  // Loading waits for the module's inline variant too.
  const cache = {
    async load(path: string, memoryLimitBytes?: number) {
      const module = await modules.load(path, memoryLimitBytes);
      await variants.settled();
      return module;
    },
  };
  const pool = new WorkerPool({ warm: 1, max: 2, maxPerGroup: 2 });
  const moves: string[] = [];
  const executor = new InlineFirstExecutor(
    pool,
    variants,
    (_group, reason) => moves.push(reason),
    slowMs,
  );
  return { cache, modules, executor, moves, pool };
}

const text = async (stream: ReadableStream<Uint8Array>) => await new Response(stream).text();

Deno.test("a short module runs on the calling thread, on fresh memory every time", async () => {
  const { cache, executor, moves } = setUp();
  try {
    const module = await cache.load(fixture("remember.wasm"));
    for (const query of ["a=1", "b=2", "c=3"]) {
      const run = executor.run(runSpec(module, { env: [["QUERY_STRING", query]] }));
      assertOk(run.finished, "expected the run to end before run() returned");
      assertEquals(
        new TextDecoder().decode(run.finished.stdout),
        "Content-Type: text/plain\n\nprevious: []\n",
      );
      assertEquals(run.finished.outcome.exitCode, 0);
    }
    assertEquals(moves, []);
  } finally {
    executor.close();
  }
});

Deno.test("a small body is stdin on the calling thread; exit codes come through", async () => {
  const { cache, executor } = setUp();
  try {
    const cat = await cache.load(fixture("cat.wasm"));
    const echoed = executor.run(runSpec(cat, { stdin: new TextEncoder().encode("x\n\nbody") }));
    assertEquals(new TextDecoder().decode(echoed.finished?.stdout), "x\n\nbody");
    const exits = await cache.load(fixture("exits.wasm"));
    const failing = executor.run(runSpec(exits, { entrypoint: "exit_three" }));
    assertOk(failing.finished);
    const outcome = await failing.done;
    assertEquals([outcome.exitCode, outcome.failure], [3, undefined]);
    assertEquals(new TextDecoder().decode(outcome.stderr), "exits: failing on purpose with 3\n");
  } finally {
    executor.close();
  }
});

Deno.test("a module that sleeps moves to the pool before sleeping and still streams", async () => {
  const { cache, executor, moves } = setUp();
  try {
    const run = executor.run(runSpec(await cache.load(fixture("slow.wasm"))));
    assertEquals(run.finished, undefined);
    assertIncludes(await text(run.stdout), "Content-Type");
    assertEquals((await run.done).exitCode, 0);
    assertEquals(moves, ["poll_oneoff"]);
  } finally {
    executor.close();
  }
});

Deno.test("an endless loop runs out of fuel here and times out in the pool", async () => {
  const { cache, executor, moves } = setUp();
  try {
    const run = executor.run(runSpec(await cache.load(fixture("runaway.wat")), { timeoutMs: 300 }));
    const outcome = await run.done;
    assertEquals(outcome.stop, "timeout", "expected the pool to stop it at its deadline");
    assertEquals(moves, ["out of fuel"]);
  } finally {
    executor.close();
  }
});

Deno.test("a guest that outgrows the memory kept here is redone with its real limit", async () => {
  const { cache, executor, moves } = setUp();
  try {
    const module = await cache.load(fixture("membomb.wat"), 32 * MIB);
    const outcome = await executor.run(runSpec(module)).done;
    assertIncludes(outcome.failure ?? "", "trap");
    assertEquals(moves, ["reached the memory kept on the server's thread"]);
  } finally {
    executor.close();
  }
});

Deno.test("output past what is kept in memory moves to the pool, byte for byte", async () => {
  const { cache, executor, moves } = setUp();
  try {
    const body = new Uint8Array(3 * MIB).fill(0x61);
    const run = executor.run(runSpec(await cache.load(fixture("cat.wasm")), { stdin: body }));
    assertEquals(run.finished, undefined);
    assertEquals((await new Response(run.stdout).arrayBuffer()).byteLength, body.length);
    assertEquals(moves, ["output larger than kept in memory"]);
  } finally {
    executor.close();
  }
});

Deno.test("a route whose runs keep moving starts in the pool for a while", async () => {
  const { cache, executor, moves } = setUp();
  try {
    const cat = await cache.load(fixture("cat.wasm"));
    const big = new Uint8Array(2 * MIB);
    for (let i = 0; i < 3; i++) {
      const run = executor.run(runSpec(cat, { stdin: big, group: "/big" }));
      await new Response(run.stdout).arrayBuffer();
      await run.done;
    }
    // Only the first run was tried here; the next ones went straight to the pool.
    assertEquals(moves.length, 1);
    // Another route is not affected.
    const small = executor.run(runSpec(cat, { stdin: new Uint8Array(8), group: "/small" }));
    assertOk(small.finished);
  } finally {
    executor.close();
  }
});

Deno.test("a route whose runs take long here is sent to the pool, where runs go in parallel", async () => {
  // Any run counts as slow here, so that the test does not depend on the machine's speed.
  const { cache, executor, moves } = setUp(-1);
  try {
    const cat = await cache.load(fixture("cat.wasm"));
    // The first run is judged too (against a looser limit, which -1 still is below).
    const runs = [1, 2].map(() =>
      executor.run(runSpec(cat, { stdin: new Uint8Array(8), group: "/heavy" }))
    );
    assertOk(runs[0].finished, "it completes here");
    assertEquals(moves.length, 1);
    assertIncludes(moves[0], "a run took");
    assertEquals(runs[1].finished, undefined);
    assertEquals((await new Response(runs[1].stdout).arrayBuffer()).byteLength, 8);
  } finally {
    executor.close();
  }
});

Deno.test("a module's start function runs again for every request", async () => {
  const { cache, executor, moves } = setUp();
  const dir = await tempDir();
  try {
    // The start function counts its runs in memory; _start prints the count, always 1 on a
    // fresh instance. (WASI calls from a start function cannot reach memory in this host.)
    const path = `${dir}/start.wat`;
    await Deno.writeTextFile(
      path,
      `(module
        (import "wasi_snapshot_preview1" "fd_write"
          (func $fd_write (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 16) "Content-Type: text/plain\\n\\nstarts: 0\\n")
        (func $count
          (i32.store8 (i32.const 50) (i32.add (i32.load8_u (i32.const 50)) (i32.const 1))))
        (start $count)
        (func (export "_start")
          (i32.store (i32.const 0) (i32.const 16))
          (i32.store (i32.const 4) (i32.const 36))
          (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`,
    );
    const module = await cache.load(path);
    for (let i = 0; i < 3; i++) {
      const run = executor.run(runSpec(module));
      assertOk(run.finished, "expected it to run on the calling thread");
      assertEquals(await text(run.stdout), "Content-Type: text/plain\n\nstarts: 1\n");
    }
    assertEquals(moves, []);
  } finally {
    executor.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reading a volume runs here; changing one moves to the pool before anything changes", async () => {
  const { cache, executor, moves } = setUp();
  const sandbox = await tempDir();
  try {
    const volume = executor.run(runSpec(await cache.load(fixture("volume.wasm")), {
      preopens: [{ guestPath: "/data", hostPath: fixture("data") }],
    }));
    assertOk(volume.finished, "a read-only module should run on the calling thread");
    assertIncludes(await text(volume.stdout), "entry: greeting.txt\n");

    const fsops = executor.run(runSpec(await cache.load(fixture("fsops.wasm")), {
      preopens: [{ guestPath: "/sandbox", hostPath: sandbox }],
    }));
    assertEquals(fsops.finished, undefined);
    const output = await text(fsops.stdout);
    assertEquals((await fsops.done).exitCode, 0);
    // The first attempt stopped before its mkdir: the pool's run made the directory itself.
    assertIncludes(output, "mkdir: ok\nmkdir again: File exists\n");
    assertEquals(moves, ["path_create_directory"]);
  } finally {
    executor.close();
    await Deno.remove(sandbox, { recursive: true });
  }
});

Deno.test("a run that arrives while its module is being prepared waits for it and runs here", async () => {
  const { modules, executor, moves, pool } = setUp();
  try {
    const poolRuns: unknown[] = [];
    const runInPool = pool.run.bind(pool);
    pool.run = (spec) => (poolRuns.push(spec), runInPool(spec));
    // Straight from the module cache: its variant for this thread is still being prepared.
    const module = await modules.load(fixture("cat.wasm"));
    const runs = ["one", "two"].map((body) =>
      executor.run(runSpec(module, { stdin: new TextEncoder().encode(`x\n\n${body}`) }))
    );
    assertEquals(runs.map((run) => run.finished), [undefined, undefined]);
    // Read into the caller's own buffers, as the server does.
    const texts = await Promise.all(runs.map(async (run) => {
      const reader = run.stdout.getReader({ mode: "byob" });
      let text = "";
      for (;;) {
        const { value, done } = await reader.read(new Uint8Array(4));
        if (done) return text;
        text += new TextDecoder().decode(value);
      }
    }));
    assertEquals(texts, ["x\n\none", "x\n\ntwo"]);
    assertEquals((await runs[0].done).exitCode, 0);
    assertEquals([moves, poolRuns.length], [[], 0]);
  } finally {
    executor.close();
  }
});

Deno.test("one slow run (a pause of the server's own) does not move a route; two in a row or a heavy one do", () => {
  const route = { skip: 0, backoff: 16, slowRuns: 0 };
  assertEquals(slowRunMoves(route, 3, 2), false);
  assertEquals(slowRunMoves(route, 3, 2), true);
  // The count starts again after a move (and after a fast run, which the executor resets).
  assertEquals(slowRunMoves(route, 3, 2), false);
  route.slowRuns = 0;
  assertEquals(slowRunMoves(route, 11, 2), true, "over five times the limit moves at once");
});
