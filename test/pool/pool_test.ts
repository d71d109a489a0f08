import { assertEquals, assertIncludes, assertOk } from "../_assert.ts";
import { WorkerPool } from "../../src/pool/pool.ts";
import { fixture, loadFixture } from "../_fixtures.ts";
import { ModuleCache } from "../../src/run/module_cache.ts";
import { runSpec } from "../_spec.ts";
import { HOLD_MS } from "../../src/pool/ring_stdio.ts";
import { tempDir } from "../_temp.ts";

/** A run of `module` with stdin from `stdin` and one variable. */
const request = (module: WebAssembly.Module, stdin: ReadableStream<Uint8Array> | null = null) =>
  runSpec(module, {
    env: [["GREETING", "hi"]],
    stdin,
    maxStdin: 1024 * 1024,
    maxOutput: 1024 * 1024,
  });

const text = async (stream: ReadableStream<Uint8Array>) => await new Response(stream).text();

Deno.test("the pool streams stdin to a guest and its stdout back", async () => {
  const pool = new WorkerPool({
    warm: 1,
    max: 2,
    maxPerGroup: 2,
  });
  try {
    const body = new Blob(["Content-Type: text/plain\n\nover the ring"]).stream();
    const run = pool.run(request(await loadFixture("cat.wasm"), body));
    assertEquals(await text(run.stdout), "Content-Type: text/plain\n\nover the ring");
    const outcome = await run.done;
    assertEquals([outcome.exitCode, outcome.failure, outcome.stop], [0, undefined, undefined]);
  } finally {
    pool.close();
  }
});

Deno.test("a guest's many small writes reach the server in a few chunks, every byte in order", async () => {
  const pool = new WorkerPool({ warm: 1, max: 1 });
  try {
    const module = await loadFixture("pieces.wasm");
    const started = performance.now();
    const run = pool.run(request(module));
    let chunks = 0;
    let text = "";
    const decoder = new TextDecoder();
    for await (const chunk of run.stdout) {
      chunks++;
      text += decoder.decode(chunk, { stream: true });
    }
    const lines = Array.from({ length: 2000 }, (_, i) => `${String(i).padStart(6, "0")}\n`);
    assertEquals(text, `Content-Type: text/plain\n\n${lines.join("")}`);
    assertEquals((await run.done).exitCode, 0);
    // 2001 writes, 14 KiB: gathered, a chunk goes out when 16 KiB are held or HOLD_MS after
    // its first byte, so there are at most a few (however slow this machine is), not 2001.
    const most = 2 + (performance.now() - started) / HOLD_MS;
    assertOk(chunks <= most, `${chunks} chunks, more than ${most}`);
  } finally {
    pool.close();
  }
});

Deno.test("a runaway guest stops by itself at its deadline, and its worker serves the next run", async () => {
  const pool = new WorkerPool({ warm: 1, max: 1, maxPerGroup: 2 });
  try {
    const runaway = await loadFixture("runaway.wat");
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      const stuck = pool.run({ ...request(runaway), timeoutMs: 300 });
      const outcome = await stuck.done;
      assertEquals(outcome.stop, "timeout");
      assertIncludes(outcome.failure!, "timed out after 300 ms");
      assertOk(performance.now() - started >= 300);
      await stuck.stdout.cancel();
      // The only worker can take the next run only once the stopped guest has unwound.
      const next = pool.run(request(await loadFixture("exits.wasm")));
      assertEquals(await text(next.stdout), "Content-Type: text/plain\n\nmain\n");
      assertEquals((await next.done).exitCode, 0);
    }
    assertEquals([pool.workers, pool.lostWorkers], [1, 0], "no worker was given up or replaced");
  } finally {
    pool.close();
  }
});

Deno.test("a guest blocked in the host (reading a body that never comes, sleeping) wakes on a stop", async () => {
  const pool = new WorkerPool({ warm: 1, max: 1, maxPerGroup: 2 });
  try {
    // cat.wasm reads stdin until its end: this body never ends.
    const endless = new ReadableStream<Uint8Array>({ pull: () => new Promise(() => {}) });
    const reading = pool.run({
      ...request(await loadFixture("cat.wasm"), endless),
      timeoutMs: 200,
    });
    assertEquals((await reading.done).stop, "timeout");
    await reading.stdout.cancel();
    // slow.wasm sleeps a second: cancelled at once.
    const sleeping = pool.run(request(await loadFixture("slow.wasm")));
    setTimeout(() => sleeping.cancel(), 100);
    assertEquals((await sleeping.done).stop, "cancelled");
    await sleeping.stdout.cancel();
    const next = pool.run(request(await loadFixture("exits.wasm")));
    await text(next.stdout);
    assertEquals((await next.done).exitCode, 0);
    assertEquals([pool.workers, pool.lostWorkers], [1, 0]);
  } finally {
    pool.close();
  }
});

Deno.test("a module that was not made preemptible is refused by the pool, not run", async () => {
  const pool = new WorkerPool({ warm: 1, max: 1 });
  try {
    const plain = await WebAssembly.compile(
      await Deno.readFile(fixture("runaway.wasm")).catch(() => new Uint8Array()),
    ).catch(() => undefined);
    const module = plain ?? await new ModuleCache().load(fixture("runaway.wat"));
    const run = pool.run(request(module));
    const outcome = await run.done;
    assertIncludes(outcome.failure ?? "", "not compiled preemptible");
  } finally {
    pool.close();
  }
});

Deno.test("a burst starts workers one at a time up to the maximum; those beyond the warm ones stop once idle", async () => {
  const pool = new WorkerPool({
    warm: 1,
    lazy: true,
    max: 4,
    maxPerGroup: 4,
    idleWorkerMs: 100,
  });
  try {
    const cat = await loadFixture("cat.wasm");
    // Bodies that never end keep their guests reading: each run holds its worker.
    const runs = Array.from(
      { length: 4 },
      () => pool.run(request(cat, new ReadableStream<Uint8Array>({ start() {} }))),
    );
    await new Promise((resolve) => setTimeout(resolve, 0));
    // Not four threads loading at once: the first run's, and the warm one.
    assertOk(pool.workers <= 2, `${pool.workers} workers started at once`);
    const deadline = Date.now() + 20_000;
    while (pool.workers < 4 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assertEquals(pool.workers, 4);
    for (const run of runs) run.cancel();
    await Promise.all(runs.map((run) => run.done));
    await new Promise((resolve) => setTimeout(resolve, 400));
    assertEquals(pool.workers, 1);
  } finally {
    pool.close();
  }
});

Deno.test("runs beyond the pool's workers, or their route's share, are counted as queued", async () => {
  const pool = new WorkerPool({ warm: 1, max: 1, maxPerGroup: 1 });
  try {
    const cat = await loadFixture("cat.wasm");
    // Bodies that never end keep their guests reading until they are cancelled.
    const open = () => new ReadableStream<Uint8Array>({ start() {} });
    const first = pool.run({ ...request(cat, open()), group: "/a" });
    const sameRoute = pool.run({ ...request(cat, open()), group: "/a" });
    const otherRoute = pool.run({ ...request(cat, open()), group: "/b" });
    let queued = 0;
    for (let i = 0; i < 100 && queued !== 2; i++) {
      queued = pool.queued;
      if (queued !== 2) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assertEquals(queued, 2, "one waiting for its route's share, one for the only worker");
    for (const run of [first, sameRoute, otherRoute]) run.cancel();
    await Promise.all([first.done, sameRoute.done, otherRoute.done]);
    assertEquals(pool.queued, 0);
  } finally {
    pool.close();
  }
});

Deno.test("a module the pool was told to forget is sent again when it runs again", async () => {
  const pool = new WorkerPool({ warm: 1, max: 1, maxPerGroup: 2 });
  try {
    const cat = await loadFixture("cat.wasm");
    const echo = async () => {
      const body = new Blob(["Content-Type: text/plain\n\nagain"]).stream();
      const run = pool.run(request(cat, body));
      const out = await text(run.stdout);
      await run.done;
      return out;
    };
    assertEquals(await echo(), "Content-Type: text/plain\n\nagain");
    // After a reload that dropped it, the worker lets it go; a run of it still works.
    pool.forget([cat]);
    assertEquals(await echo(), "Content-Type: text/plain\n\nagain");
    assertEquals(pool.workers, 1);
  } finally {
    pool.close();
  }
});

/** A whole body for `cat.wasm`: a header block and `size` bytes after it, all `fill`. */
const catBody = (size: number, fill = "x") =>
  new TextEncoder().encode(`Content-Type: text/plain\n\n${fill.repeat(size)}`);

Deno.test("a run without a body to stream comes back whole, the module's first too; a large output streams, every byte", async () => {
  const pool = new WorkerPool({ warm: 1, max: 1, maxPerGroup: 1 });
  try {
    const cat = await loadFixture("cat.wasm");
    // Through the queue: small output comes back whole, no stream made.
    for (const fill of ["f", "s"]) {
      const small = pool.run(runSpec(cat, { stdin: catBody(100, fill) }));
      const whole = await small.whole;
      assertEquals(
        new TextDecoder().decode(whole?.stdout),
        new TextDecoder().decode(catBody(100, fill)),
      );
      assertEquals(whole?.outcome.exitCode, 0);
    }
    // Over the 16 KiB held back: it streams through its slot's ring.
    const large = pool.run(runSpec(cat, { stdin: catBody(40_000, "L") }));
    assertEquals(await large.whole, undefined);
    assertEquals(await text(large.stdout), new TextDecoder().decode(catBody(40_000, "L")));
    assertEquals((await large.done).exitCode, 0);
  } finally {
    pool.close();
  }
});

Deno.test("output left unread when its guest ended does not hold the worker, and is all read later", async () => {
  const pool = new WorkerPool({ warm: 1, max: 1, maxPerGroup: 1 });
  try {
    const cat = await loadFixture("cat.wasm");
    await text(pool.run(runSpec(cat, { stdin: catBody(1) })).stdout);
    // 40 KB fits the worker's ring: the guest ends without anyone reading.
    const unread = pool.run(runSpec(cat, { stdin: catBody(40_000, "u") }));
    assertEquals(await unread.whole, undefined);
    assertEquals((await unread.done).exitCode, 0);
    // The only worker serves the next runs meanwhile, with their own bytes.
    for (let i = 0; i < 3; i++) {
      const next = pool.run(runSpec(cat, { stdin: catBody(20_000, String(i)) }));
      assertEquals(await text(next.stdout), new TextDecoder().decode(catBody(20_000, String(i))));
    }
    assertEquals(await text(unread.stdout), new TextDecoder().decode(catBody(40_000, "u")));
  } finally {
    pool.close();
  }
});

Deno.test("a run stopped while its output streams leaves nothing in its worker for the next run", async () => {
  const pool = new WorkerPool({ warm: 1, max: 1, maxPerGroup: 1 });
  try {
    const cat = await loadFixture("cat.wasm");
    const flood = await loadFixture("flood.wasm");
    await text(pool.run(runSpec(cat, { stdin: catBody(1) })).stdout);
    for (let round = 0; round < 2; round++) {
      // Each flood fills its slot's ring, nobody reads, and its deadline stops it.
      const stopped = pool.run(runSpec(flood, { timeoutMs: 300 }));
      const outcome = await stopped.done;
      assertEquals(outcome.stop, "timeout");
      const next = pool.run(runSpec(cat, { stdin: catBody(30_000, "n") }));
      assertEquals(await text(next.stdout), new TextDecoder().decode(catBody(30_000, "n")));
      await stopped.stdout.cancel();
    }
    assertEquals(pool.lostWorkers, 0);
  } finally {
    pool.close();
  }
});

Deno.test("a queued run stopped before any worker took it never runs; its deadline counts while it waits", async () => {
  const pool = new WorkerPool({ warm: 1, max: 1, maxPerGroup: 4 });
  try {
    const spin = await loadFixture("spin.wasm");
    const mark = await loadFixture("mark.wat");
    const cat = await loadFixture("cat.wasm");
    const sandbox = await tempDir();
    const writer = (timeoutMs: number) =>
      runSpec(mark, {
        preopens: [{ guestPath: "/sandbox", hostPath: sandbox, readOnly: false }],
        timeoutMs,
      });
    // The only worker spins until its deadline; two runs that would write wait behind it.
    const started = performance.now();
    const busy = pool.run(runSpec(spin, { timeoutMs: 1500 }));
    const cancelled = pool.run(writer(60_000));
    const timedOut = pool.run(writer(300));
    await new Promise((resolve) => setTimeout(resolve, 100));
    cancelled.cancel();
    const [cancelledOutcome, timedOutOutcome] = [await cancelled.done, await timedOut.done];
    const waited = performance.now() - started;
    assertEquals([cancelledOutcome.stop, timedOutOutcome.stop], ["cancelled", "timeout"]);
    assertOk(waited < 1400, `stopped while the worker was still busy (after ${waited} ms)`);
    assertEquals((await busy.done).stop, "timeout");
    // The worker serves the next run, and neither stopped run ever touched the volume.
    const next = pool.run(runSpec(cat, { stdin: catBody(5, "n") }));
    assertEquals(await text(next.stdout), new TextDecoder().decode(catBody(5, "n")));
    assertEquals([...Deno.readDirSync(sandbox)], []);
    assertEquals(pool.lostWorkers, 0);
    // A run of it that is not stopped does leave its mark.
    assertEquals((await pool.run(writer(60_000)).done).exitCode, 0);
    assertEquals([...Deno.readDirSync(sandbox)].map((entry) => entry.name), ["ran"]);
  } finally {
    pool.close();
  }
});

Deno.test("a worker given up takes its queue slot with it; with every slot gone, runs still go through", async () => {
  // A grace period shorter than one of the guest's host calls: it is given up.
  const pool = new WorkerPool({ warm: 1, max: 1, maxPerGroup: 1, stopGraceMs: 1 });
  try {
    const spin = await loadFixture("host_bound.wat");
    const cat = await loadFixture("cat.wasm");
    // The pool's sixteen slots (two per worker, at least sixteen), each lost with its worker.
    for (let attempt = 0; attempt < 100 && pool.lostWorkers < 16; attempt++) {
      assertEquals((await pool.run(runSpec(spin, { timeoutMs: 20 })).done).stop, "timeout");
    }
    assertOk(pool.lostWorkers >= 16, `only ${pool.lostWorkers} workers were given up`);
    for (const fill of ["a", "b"]) {
      const next = pool.run(runSpec(cat, { stdin: catBody(5, fill) }));
      assertEquals(await text(next.stdout), new TextDecoder().decode(catBody(5, fill)));
    }
    assertEquals(pool.workers, 1);
  } finally {
    pool.close();
  }
});

Deno.test("workers replaced after every run while runs go on: each run gets its own answer, none lost", async () => {
  // Every guest ends with more memory than this: its worker is replaced once it runs nothing,
  // at once, or after the job it took meanwhile (a guest that computes for half a second).
  const pool = new WorkerPool({ warm: 2, max: 2, maxPerGroup: 2, replaceAboveBytes: 1000 });
  try {
    const cat = await loadFixture("cat.wasm");
    const think = await loadFixture("think.wasm");
    for (let round = 0; round < 2; round++) {
      const runs = Array.from(
        { length: 8 },
        (_, i) =>
          i % 2 === 0
            ? pool.run(runSpec(cat, { stdin: catBody(100 + i, String(i)) }))
            : pool.run(runSpec(think)),
      );
      const outputs = await Promise.all(runs.map((run) => text(run.stdout)));
      outputs.forEach((output, i) =>
        assertEquals(
          output,
          i % 2 === 0
            ? new TextDecoder().decode(catBody(100 + i, String(i)))
            : "Content-Type: text/plain\n\nfirst\nsecond\n",
        )
      );
      for (const run of runs) assertEquals((await run.done).exitCode, 0);
    }
    assertOk(pool.workers <= 2, `${pool.workers} workers`);
    // Replaced indeed: at least one worker per round of think runs beyond the two warm ones.
    assertOk(pool.startedWorkers >= 4, `${pool.startedWorkers} workers started`);
    assertEquals(pool.lostWorkers, 0);
  } finally {
    pool.close();
  }
});

Deno.test("a run stopped while it waits for its route's share never runs", async () => {
  const pool = new WorkerPool({ warm: 1, max: 2, maxPerGroup: 1 });
  try {
    const spin = await loadFixture("spin.wasm");
    const mark = await loadFixture("mark.wat");
    const sandbox = await tempDir();
    const marking = () => ({
      ...runSpec(mark, {
        preopens: [{ guestPath: "/sandbox", hostPath: sandbox, readOnly: false }],
      }),
      group: "/a",
    });
    const busy = pool.run({ ...runSpec(spin, { timeoutMs: 600 }), group: "/a" });
    const waiting = pool.run(marking());
    await new Promise((resolve) => setTimeout(resolve, 100));
    waiting.cancel();
    assertEquals((await busy.done).stop, "timeout");
    assertEquals((await waiting.done).stop, "cancelled");
    // Its route's share came free after the stop: the job must not have been posted then.
    await new Promise((resolve) => setTimeout(resolve, 300));
    assertEquals([...Deno.readDirSync(sandbox)], []);
    // A run of it that is not stopped does leave its mark.
    assertEquals((await pool.run(marking()).done).exitCode, 0);
    assertEquals([...Deno.readDirSync(sandbox)].map((entry) => entry.name), ["ran"]);
  } finally {
    pool.close();
  }
});
