import { assertEquals, assertIncludes, assertOk } from "../_assert.ts";
import { WorkerPool } from "../../src/pool/pool.ts";
import { compileFixture } from "../_fixtures.ts";
import { ModuleCache } from "../../src/run/module_cache.ts";
import { fixture } from "../_fixtures.ts";
import { DEFAULT_OUTBOUND } from "../../src/outbound_http/experimental_http.ts";

const text = async (stream: ReadableStream<Uint8Array>) => await new Response(stream).text();

function request(module: WebAssembly.Module, stdin: ReadableStream<Uint8Array> | null = null) {
  return {
    module,
    entrypoint: "_start",
    args: ["guest"],
    env: [["GREETING", "hi"]] as [string, string][],
    preopens: [],
    stdin,
    // Generous: pool workers run at a lower priority, and a busy test machine starves them.
    timeoutMs: 60_000,
    maxStdin: 1024 * 1024,
    maxOutput: 1024 * 1024,
    outbound: DEFAULT_OUTBOUND,
  };
}

Deno.test("the pool streams stdin to a guest and its stdout back", async () => {
  const pool = new WorkerPool({
    warm: 1,
    max: 2,
    maxPerGroup: 2,
  });
  try {
    const body = new Blob(["Content-Type: text/plain\n\nover the ring"]).stream();
    const run = pool.run(request(await compileFixture("cat.wasm"), body));
    assertEquals(await text(run.stdout), "Content-Type: text/plain\n\nover the ring");
    const outcome = await run.done;
    assertEquals([outcome.exitCode, outcome.failure, outcome.stop], [0, undefined, undefined]);
  } finally {
    pool.close();
  }
});

Deno.test("a runaway guest is stopped at its deadline and its worker replaced", async () => {
  const pool = new WorkerPool({
    warm: 1,
    max: 1,
    maxPerGroup: 2,
  });
  try {
    const runaway = await new ModuleCache().load(fixture("runaway.wat"));
    const started = performance.now();
    const stuck = pool.run({ ...request(runaway), timeoutMs: 300 });
    const outcome = await stuck.done;
    assertEquals(outcome.stop, "timeout");
    assertIncludes(outcome.failure!, "timed out after 300 ms");
    assertOk(performance.now() - started >= 300);
    await stuck.stdout.cancel();
    // The only worker was replaced: the next run still works.
    const next = pool.run(request(await compileFixture("exits.wasm")));
    assertEquals(await text(next.stdout), "Content-Type: text/plain\n\nmain\n");
    assertEquals((await next.done).exitCode, 0);
  } finally {
    pool.close();
  }
});

Deno.test("workers started by a burst are stopped once idle; the warm ones stay", async () => {
  const pool = new WorkerPool({
    warm: 1,
    max: 4,
    maxPerGroup: 4,
    idleWorkerMs: 100,
  });
  try {
    const module = await compileFixture("exits.wasm");
    const runs = Array.from({ length: 4 }, () => pool.run(request(module)));
    await Promise.all(runs.map(async (run) => (await text(run.stdout), await run.done)));
    assertEquals(pool.workers, 4);
    await new Promise((resolve) => setTimeout(resolve, 400));
    assertEquals(pool.workers, 1);
  } finally {
    pool.close();
  }
});
