/**
 * The component runner on its own (the layer below the pool): fresh state for every run, from
 * one instance put back between runs, and a new one after a trap.
 * @module
 */

import { assertEquals, assertOk } from "../_assert.ts";
import { fixture, ROOT } from "../_fixtures.ts";
import { countingInstances } from "../_instances.ts";
import { loadComponent } from "../../src/component/load.ts";
import { ComponentRunner } from "../../src/component/runner.ts";
import { CompileCache } from "../../src/run/compile_cache.ts";
import { componentParts } from "../../src/run/module_component.ts";
import { BytesSource, CollectingSink } from "../../src/wasi/streams.ts";
import { sha256Hex } from "../../src/digest.ts";

async function runnerFor(path: string): Promise<ComponentRunner> {
  const bytes = await Deno.readFile(path);
  const module = await loadComponent(bytes, await sha256Hex(bytes), {
    preemptible: true,
    derived: new CompileCache(undefined),
  });
  return new ComponentRunner(module, componentParts(module)!);
}

async function get(
  runner: ComponentRunner,
  pathWithQuery: string,
  { method = "GET", headers = [] as [string, string][], body = new Uint8Array() } = {},
) {
  const stdout = new CollectingSink(1 << 20);
  const end = await runner.run(
    {
      args: [],
      env: [],
      stdin: new BytesSource(body),
      stdout,
      stderr: new CollectingSink(1024),
    },
    undefined,
    { method, pathWithQuery, scheme: "http", authority: "localhost", headers },
  );
  return { end, text: new TextDecoder().decode(stdout.bytes()) };
}

Deno.test("component runner: every run sees fresh state, from one instance put back between runs", async () => {
  const runner = await runnerFor(`${ROOT}modules/http_component.wasm`);
  const cores = Object.keys(componentParts(runner.module)!.cores).length;
  const answers: string[] = [];
  const made = await countingInstances(async () => {
    for (let i = 0; i < 20; i++) answers.push((await get(runner, "/?count")).text);
  });
  assertEquals(new Set(answers), new Set(["Status: 200\ncontent-type: text/plain\n\n1\n"]));
  // One instance of each core module, for all twenty runs.
  assertEquals(made, cores);
  assertOk(runner.keptBytes > 0);
});

Deno.test("component runner: a component of a larger memory (6 MiB) is put back too, not made anew", async () => {
  // Making a component costs far more than a WAGI module (a JavaScript engine's: ~30 ms);
  // putting back its memory, ~0.3 ms for 10 MiB.
  const runner = await runnerFor(fixture("big_component.wasm"));
  const cores = Object.keys(componentParts(runner.module)!.cores).length;
  const answers: string[] = [];
  const made = await countingInstances(async () => {
    for (let i = 0; i < 10; i++) answers.push((await get(runner, "/?count")).text);
  });
  assertEquals(new Set(answers), new Set(["Status: 200\ncontent-type: text/plain\n\n1\n"]));
  assertEquals(made, cores);
  assertOk(runner.keptBytes > 6 * 1024 * 1024);
});

Deno.test("component runner: whatever a run wrote (the guest, or the host for it), the next starts from a fresh instance's memory", async () => {
  const body = new Uint8Array(200_000).map((_, i) => i * 7);
  const runs: [string, Parameters<typeof get>[2]][] = [
    ["/?count", {}],
    ["/?status=201", {}],
    ["/?header=x-a", { headers: [["x-a", "1".repeat(3000)], ["x-a", "two"], ["x-b", "3"]] }],
    ["/echo", { method: "POST", body }],
    ["/?leak=20", {}],
    ["/?hold=2", {}],
    ["/" + "p".repeat(5000), { headers: [["x-long", "v".repeat(20_000)]] }],
  ];
  for (const path of [`${ROOT}modules/http_component.wasm`, fixture("big_component.wasm")]) {
    const runner = await runnerFor(path);
    const parts = componentParts(runner.module)!;
    // Put back chunk by chunk: the guest's writes and jco's are marked.
    assertOk(parts.tracked.length > 0 && typeof parts.hostWrites !== "string", path);
    const fresh = (await get(await runnerFor(path), "/?checksum")).text;
    assertOk(/\n\n[0-9a-f]{8}\n$/.test(fresh), fresh);
    assertEquals((await get(runner, "/?checksum")).text, fresh);
    const made = await countingInstances(async () => {
      for (const [target, request] of runs) {
        const answered = await get(runner, target, request);
        assertEquals(answered.end.failure, undefined, target);
        assertEquals((await get(runner, "/?checksum")).text, fresh, `after ${target}`);
      }
    });
    // All on the instance its first checksum made.
    assertEquals(made, 0);
  }
});

Deno.test("component runner: after a trap the instance is made anew, and answers again", async () => {
  const runner = await runnerFor(`${ROOT}modules/http_component.wasm`);
  await get(runner, "/");
  const trapped = await get(runner, "/?trap");
  assertEquals(trapped.end.failure, "trap: unreachable");
  assertEquals(runner.keptBytes, 0);
  const made = await countingInstances(async () => {
    assertEquals((await get(runner, "/?count")).text.endsWith("\n\n1\n"), true);
  });
  assertOk(made > 0);
});

Deno.test("component runner: what a guest leaves behind in every run is let go of, and its instance kept", async () => {
  const runner = await runnerFor(`${ROOT}modules/http_component.wasm`);
  await get(runner, "/");
  // 50 runs, each leaving 200 header fields (~300 bytes each) behind: ~3 MB in all were they
  // kept, and resources with handles from earlier runs would be seen by later ones.
  const made = await countingInstances(async () => {
    for (let i = 0; i < 50; i++) {
      assertEquals((await get(runner, "/?leak=200")).text.endsWith("leaked 200\n"), true);
    }
    assertEquals((await get(runner, "/?count")).text.endsWith("\n\n1\n"), true);
  });
  assertEquals(made, 0);
  // Thousands in one run: still within a run's budget, and let go of too.
  assertEquals((await get(runner, "/?leak=5000")).text.endsWith("leaked 5000\n"), true);
  assertOk(runner.keptBytes > 0);
  assertEquals(runner.heldResources, 0);
});

Deno.test("component runner: an instance is kept run after run, not made anew every so many runs", async () => {
  const runner = await runnerFor(`${ROOT}modules/http_component.wasm`);
  await get(runner, "/");
  // (Once every 10,000 runs, it used to be: for a JavaScript engine, a stall of 30–90 ms.)
  const made = await countingInstances(async () => {
    for (let i = 0; i < 12_000; i++) await get(runner, "/?count");
  });
  assertEquals(made, 0);
  assertEquals((await get(runner, "/?count")).text.endsWith("\n\n1\n"), true);
});

Deno.test("component runner: an instance whose start calls into its own code is kept; one whose start calls the host is not", async () => {
  // `_initialize`, called as the component is made: its own work only, then a host call.
  const own = await runnerFor(fixture("slow_start_component.wasm"));
  await get(own, "/");
  const remade = await countingInstances(async () => {
    for (let i = 0; i < 5; i++) {
      assertEquals((await get(own, "/?count")).text.endsWith("\n\n1\n"), true);
    }
  });
  assertEquals(remade, 0);
  const host = await runnerFor(fixture("host_start_component.wasm"));
  await get(host, "/");
  assertEquals(host.keptBytes, 0);
  const made = await countingInstances(async () => {
    for (let i = 0; i < 5; i++) {
      assertEquals((await get(host, "/?count")).text.endsWith("\n\n1\n"), true);
    }
  });
  assertOk(made >= 5, `${made} instances for 5 runs`);
});

Deno.test("component runner: a command component answers the same run after run", async () => {
  const runner = await runnerFor(fixture("env_command.wasm"));
  const outputs = new Set<string>();
  for (let i = 0; i < 5; i++) {
    const stdout = new CollectingSink(1 << 20);
    const end = await runner.run({
      args: ["/x", "a"],
      env: [["EMPTY", ""], ["REQUEST_METHOD", "POST"]],
      stdin: new BytesSource(new TextEncoder().encode("body")),
      stdout,
      stderr: new CollectingSink(1024),
    });
    assertEquals(end.exitCode, 0);
    outputs.add(new TextDecoder().decode(stdout.bytes()));
  }
  assertEquals([...outputs], [
    "Content-Type: text/plain\n\n### argv\n0 = /x\n1 = a\n### env\nEMPTY = \n" +
    "REQUEST_METHOD = POST\n### body\nbody",
  ]);
});

/** A component's runner on the server's thread, and a GET for it to run. */
async function inlineRunnerFor(path: string) {
  const { InlineComponentRunner } = await import("../../src/component/inline.ts");
  const bytes = await Deno.readFile(path);
  const module = await loadComponent(bytes, await sha256Hex(bytes), {
    preemptible: true,
    derived: new CompileCache(undefined),
  });
  const inline = new InlineComponentRunner(module, componentParts(module)!);
  await inline.prepare();
  return inline;
}

function inlineGet(pathWithQuery: string, maxOutput = 1 << 20) {
  return {
    entrypoint: "_start",
    args: [],
    env: [],
    preopens: [],
    maxOutput,
    stdin: new Uint8Array(),
    request: {
      method: "GET",
      pathWithQuery,
      scheme: "http" as const,
      authority: "localhost",
      headers: [] as [string, string][],
    },
  };
}

Deno.test("component on the server's thread: answers in place, or moves to the pool when it loops, sleeps or writes too much", async () => {
  const { MoveToPool } = await import("../../src/inline/policy.ts");
  const inline = await inlineRunnerFor(`${ROOT}modules/http_component.wasm`);
  const answered = inline.run(inlineGet("/?count"));
  assertOk(!(answered instanceof MoveToPool));
  assertEquals(new TextDecoder().decode(answered.stdout).endsWith("\n\n1\n"), true);
  const looped = inline.run(inlineGet("/?loop"));
  assertOk(looped instanceof MoveToPool && /ran longer than/.test(looped.reason));
  const large = inline.run(inlineGet("/", 10));
  assertOk(large instanceof MoveToPool && /output/.test(large.reason));
  // After both, it answers in place again, from fresh state.
  const again = inline.run(inlineGet("/?count"));
  assertOk(!(again instanceof MoveToPool));
  assertEquals(new TextDecoder().decode(again.stdout).endsWith("\n\n1\n"), true);
});

Deno.test("a component that can make outbound requests runs on the server's thread until it is about to make one: that run moves to the pool before the request is made", async () => {
  const { MoveToPool } = await import("../../src/inline/policy.ts");
  let served = 0;
  const upstream = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    served++;
    return new Response("upstream\n");
  });
  try {
    const inline = await inlineRunnerFor(fixture("fetch_component.wasm"));
    const answered = inline.run(inlineGet("/?count"));
    assertOk(!(answered instanceof MoveToPool));
    assertEquals(new TextDecoder().decode(answered.stdout).endsWith("\n\n1\n"), true);
    const fetching = inline.run(inlineGet(`/?fetch=127.0.0.1:${upstream.addr.port}`));
    assertOk(fetching instanceof MoveToPool, "a run making a request was not moved");
    assertEquals(fetching.reason, "it makes an outbound request");
    // Give a request, had one been sent, the time to arrive.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assertEquals(served, 0);
    const again = inline.run(inlineGet("/?count"));
    assertOk(!(again instanceof MoveToPool));
    assertEquals(new TextDecoder().decode(again.stdout).endsWith("\n\n1\n"), true);
  } finally {
    await upstream.shutdown();
  }
});

Deno.test("a run on the server's thread that must make its instance has time to make it, apart from its own budget", async () => {
  const { MoveToPool } = await import("../../src/inline/policy.ts");
  // Making an instance of it takes longer than a run's budget here (20 ms).
  const inline = await inlineRunnerFor(fixture("slow_start_component.wasm"));
  // Its first runs (the engine still compiles it, slowly) may be moved, until one is answered.
  for (let tries = 0; tries < 3; tries++) {
    if (!(inline.run(inlineGet("/")) instanceof MoveToPool)) break;
  }
  for (let i = 0; i < 3; i++) {
    // Stopped: its instance is not trusted again, and the next run makes a new one.
    const looped = inline.run(inlineGet("/?loop"));
    assertOk(looped instanceof MoveToPool && /ran longer than 20 ms/.test(looped.reason));
    const next = inline.run(inlineGet("/?count"));
    assertOk(!(next instanceof MoveToPool), `moved: ${(next as { reason?: string }).reason}`);
    assertEquals(new TextDecoder().decode(next.stdout).endsWith("\n\n1\n"), true);
  }
});
