import { assertEquals, assertIncludes, assertOk } from "../_assert.ts";
import { fixture, ROOT } from "../_fixtures.ts";
import { startServer } from "./_server.ts";
import { writeConfig as writeTempConfig } from "../_temp.ts";

const MIB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The resident memory of a process, from /proc. */
async function rssBytes(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+) kB/)![1]) * 1024;
}

async function writeConfig(): Promise<string> {
  return await writeTempConfig(
    `
[[module]]
route = "/runaway"
module = "${fixture("runaway.wat")}"
timeout = 1.5

[[module]]
route = "/membomb"
module = "${fixture("membomb.wat")}"
memory_limit = "32MiB"

[[module]]
route = "/hello"
module = "${ROOT}modules/hello.wasm"

[[module]]
route = "/echo"
module = "${fixture("cat.wasm")}"

[[module]]
route = "/slow"
module = "${fixture("slow.wasm")}"

[[module]]
route = "/think"
module = "${fixture("think.wasm")}"

[[module]]
route = "/remember"
module = "${fixture("remember.wasm")}"
`,
    {},
    "wagi-limits-",
  );
}

const config = await writeConfig();

Deno.test("runaway modules get 504 at their deadline while 100 others succeed", async () => {
  const server = await startServer(["-c", config, "--workers", "2", "--max-concurrency", "16"]);
  try {
    const started = performance.now();
    const runaway = Array.from({ length: 10 }, async () => {
      const response = await fetch(`${server.url}/runaway`);
      return { status: response.status, body: await response.text(), at: performance.now() };
    });
    const normal = Array.from({ length: 100 }, async () => {
      const response = await fetch(`${server.url}/hello`);
      return { status: response.status, body: await response.text() };
    });
    for (const result of await Promise.all(normal)) {
      assertEquals([result.status, result.body], [200, "hello world\n"]);
    }
    for (const result of await Promise.all(runaway)) {
      assertEquals(result.status, 504);
      assertIncludes(result.body, "timed out after 1500 ms");
      assertOk(result.at - started >= 1400, "not before the deadline");
    }
    const after = await fetch(`${server.url}/hello`);
    assertEquals([after.status, await after.text()], [200, "hello world\n"]);
  } finally {
    await server.stop();
  }
});

Deno.test("a memory bomb stops at its memory_limit with a 500; the server's RSS stays bounded", async () => {
  const server = await startServer(["-c", config, "--workers", "2", "--max-concurrency", "8"]);
  try {
    const before = await rssBytes(server.child.pid);
    const results = await Promise.all(Array.from({ length: 100 }, async () => {
      const response = await fetch(`${server.url}/membomb`);
      await response.body?.cancel();
      return response.status;
    }));
    assertEquals(results, Array(100).fill(500));
    const after = await rssBytes(server.child.pid);
    // 8 guests of at most 32 MiB each may be alive at once, plus their workers.
    assertOk(
      after - before < 8 * 32 * MIB + 256 * MIB,
      `RSS grew by ${(after - before) / MIB} MiB`,
    );
    assertIncludes(server.output().stderr, "trap");
    assertEquals(await (await fetch(`${server.url}/hello`)).text(), "hello world\n");
  } finally {
    await server.stop();
  }
});

Deno.test("a 256 MiB upload echoed back streams through with the server's RSS far below it", async () => {
  const server = await startServer(["-c", config, "--max-body", "1GiB"]);
  try {
    const url = new URL(server.url);
    const conn = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
    const head = new TextEncoder().encode("Content-Type: application/octet-stream\n\n");
    const size = 256 * MIB;
    const chunk = new Uint8Array(256 * 1024).fill(0x61);
    const request =
      `POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: ${head.length + size}\r\n` +
      `Connection: close\r\n\r\n`;
    let peakRss = 0;
    const sampler = setInterval(async () => {
      peakRss = Math.max(peakRss, await rssBytes(server.child.pid).catch(() => 0));
    }, 100);
    const upload = (async () => {
      await conn.write(new TextEncoder().encode(request));
      await conn.write(head);
      for (let sent = 0; sent < size; sent += chunk.length) {
        let at = 0;
        while (at < chunk.length) at += await conn.write(chunk.subarray(at));
      }
    })();
    let received = 0;
    let tail = "";
    const buffer = new Uint8Array(256 * 1024);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      received += n;
      tail = (tail + new TextDecoder().decode(buffer.subarray(Math.max(0, n - 16), n))).slice(-16);
    }
    await upload;
    clearInterval(sampler);
    conn.close();
    assertOk(received > size, `received ${received} bytes`);
    assertOk(tail.endsWith("0\r\n\r\n"), "the chunked response ended properly");
    assertOk(peakRss < 200 * MIB, `peak RSS ${peakRss / MIB} MiB`);
  } finally {
    await server.stop();
  }
});

Deno.test("the header and first chunk arrive before a module that then sleeps has ended", async () => {
  const server = await startServer(["-c", config]);
  try {
    const started = performance.now();
    const response = await fetch(`${server.url}/slow`);
    const reader = response.body!.getReader();
    let first = "";
    while (!first.endsWith("\n")) first += new TextDecoder().decode((await reader.read()).value);
    assertEquals([response.status, first], [200, "first\n"]);
    // The module sleeps a second before it writes the rest: it is still running now.
    const next = reader.read();
    const pending = await Promise.race([next.then(() => false), sleep(300).then(() => true)]);
    assertOk(pending, "the rest came at once: the first chunk was not streamed ahead of it");
    let rest = "";
    for (let read = await next; !read.done; read = await reader.read()) {
      rest += new TextDecoder().decode(read.value);
    }
    assertEquals(rest, "second\n");
    assertOk(performance.now() - started >= 1000, "the rest came after the sleep");
  } finally {
    await server.stop();
  }
});

Deno.test("the first line of a module that then computes, never waiting, arrives long before its end", async () => {
  // The pool gathers a guest's small writes into chunks; a guest that never waits must still
  // have what it wrote handed over within milliseconds.
  const server = await startServer(["-c", config, "--pool-only"]);
  try {
    const started = performance.now();
    const response = await fetch(`${server.url}/think`);
    const reader = response.body!.getReader();
    let first = "";
    while (!first.endsWith("\n")) first += new TextDecoder().decode((await reader.read()).value);
    const firstAt = performance.now();
    assertEquals([response.status, first], [200, "first\n"]);
    let rest = "";
    for (let read = await reader.read(); !read.done; read = await reader.read()) {
      rest += new TextDecoder().decode(read.value);
    }
    assertEquals(rest, "second\n");
    const endAt = performance.now();
    assertOk(endAt - firstAt >= 300, `the first line came ${endAt - firstAt} ms before the end`);
    assertOk(endAt - started >= 500, "the module computed half a second");
  } finally {
    await server.stop();
  }
});

Deno.test("no state survives from one request to the next, on the server's thread or in the pool", async () => {
  for (const where of [[], ["--pool-only"]]) {
    // One worker: in the pool, every run goes to the instance the worker keeps.
    const server = await startServer([
      "-c",
      config,
      "--workers",
      "1",
      "--max-concurrency",
      "1",
      ...where,
    ]);
    try {
      for (const query of ["first=1", "second=2", "third=3"]) {
        const body = await (await fetch(`${server.url}/remember?${query}`)).text();
        assertEquals(body, "previous: []\n", where.join(" "));
      }
    } finally {
      await server.stop();
    }
  }
});

Deno.test("bodies over --max-body get 413, declared or chunked, before the module runs", async () => {
  const server = await startServer(["-c", config, "--max-body", "1KiB"]);
  try {
    const declared = await fetch(`${server.url}/echo`, {
      method: "POST",
      body: new Uint8Array(2048),
    });
    assertEquals(declared.status, 413);
    await declared.body?.cancel();
    const chunked = await fetch(`${server.url}/echo`, {
      method: "POST",
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(new Uint8Array(700));
          controller.enqueue(new Uint8Array(700));
          controller.close();
        },
      }),
    });
    assertEquals(chunked.status, 413);
    await chunked.body?.cancel();
    const small = await fetch(`${server.url}/echo`, {
      method: "POST",
      body: "Content-Type: text/plain\n\nsmall",
    });
    assertEquals([small.status, await small.text()], [200, "small"]);
  } finally {
    await server.stop();
  }
});
