/**
 * Hostile modules and clients against the real server: each case did damage once (a crash, a
 * leak between requests, an unbounded resource) and must not any more.
 * @module
 */

import { assertEquals, assertIncludes, assertOk } from "../_assert.ts";
import { fixture, ROOT } from "../_fixtures.ts";
import { startServer } from "./_server.ts";
import { tempDir, writeConfig } from "../_temp.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The raw bytes of a response header value (Headers keep one character per byte). */
const headerBytes = (value: string) => Uint8Array.from(value, (c) => c.charCodeAt(0));

Deno.test("a control character in a response header is a 500, on both paths; UTF-8 passes whole", async () => {
  const config = await writeConfig(`
[[module]]
route = "/echo"
module = "${fixture("header_echo.wasm")}"

[[module]]
route = "/hello"
module = "${ROOT}modules/hello.wasm"
`);
  // The pool, then the server's thread (where a route runs unless told otherwise).
  for (const [path, flags] of [["the pool", ["--pool-only"]], ["the server's thread", []]]) {
    const server = await startServer(["-c", config, ...flags]);
    try {
      const attempt = async (query: string) => {
        const response = await fetch(`${server.url}/echo?${query}`);
        await response.body?.cancel();
        return response;
      };
      for (const bad of ["%01", "%0B", "%1B", "%7F"]) {
        const response = await attempt(`x${bad}y`);
        assertEquals(response.status, 500, `${bad} through ${path}`);
      }
      const utf8 = await attempt("%C3%A9%20%C3%A0");
      assertEquals(utf8.status, 200);
      assertEquals(new TextDecoder().decode(headerBytes(utf8.headers.get("x-echo")!)), "é à");
      const hello = await fetch(`${server.url}/hello`);
      assertEquals(await hello.text(), "hello world\n", "the server is still serving");
      assertIncludes(server.output().stderr, "module sent an invalid header");
    } finally {
      const status = await server.stop();
      assertEquals(status.code, 0, `the server never crashed (${path})`);
    }
  }
});

Deno.test("a stopped guest never reaches another request's body or response", async () => {
  const config = await writeConfig(`
[[module]]
route = "/leech"
module = "${fixture("leech.wasm")}"
timeout = 0.3

[[module]]
route = "/cat"
module = "${fixture("cat.wasm")}"
`);
  const server = await startServer(["-c", config, "--workers", "4", "--max-concurrency", "64"]);
  try {
    // Bodies over 64 KiB stream through the pool, in the same kind of buffers the leech had.
    const body = (i: number) =>
      `Content-Type: text/plain\n\n${`request ${i} `.repeat(8000)}`.slice(0, 90_000);
    const runs = Array.from({ length: 80 }, async (_, i) => {
      if (i % 2 === 0) {
        const response = await fetch(`${server.url}/leech`, { method: "POST", body: body(i) });
        await response.body?.cancel();
        return;
      }
      const response = await fetch(`${server.url}/cat`, { method: "POST", body: body(i) });
      const text = await response.text();
      assertEquals(response.status, 200);
      assertOk(!text.includes("LEECH"), `request ${i} got a stopped guest's output`);
      assertEquals(text, body(i).slice("Content-Type: text/plain\n\n".length), `request ${i}`);
    });
    await Promise.all(runs);
  } finally {
    await server.stop();
  }
});

Deno.test("a symlink swapped in during a call never leads out of a volume, for reading or creating", async () => {
  const root = await tempDir("wagi-race-");
  await Deno.mkdir(`${root}/volume/x`, { recursive: true });
  await Deno.writeTextFile(`${root}/volume/x/data`, "inside");
  await Deno.mkdir(`${root}/secret`);
  await Deno.writeTextFile(`${root}/secret/data`, "SECRET");
  const config = await writeConfig(`
[[module]]
route = "/race"
module = "${fixture("race.wasm")}"
volumes = { "/v" = "${root}/volume" }
timeout = 30
`);
  const server = await startServer(["-c", config, "--workers", "3"]);
  try {
    const [, read, created] = await Promise.all(
      ["swap", "read", "create"].map((mode) =>
        fetch(`${server.url}/race?${mode}`).then((r) => r.text())
      ),
    );
    const counts = read.match(/read: (\d+) tries, (\d+) inside, (\d+) outside/);
    assertOk(counts, read);
    assertEquals(counts[3], "0", `the guest read the host's file: ${read}`);
    assertOk(Number(counts[2]) > 0, `the race never read inside either: ${read}`);
    assertIncludes(created, "create:");
    assertEquals([...Deno.readDirSync(`${root}/secret`)].map((e) => e.name), ["data"]);
  } finally {
    await server.stop();
  }
});

Deno.test("a module's wrong Content-Length breaks neither its response nor the next one", async () => {
  const config = await writeConfig(
    `
[[module]]
route = "/cl"
module = "cl.wat"
`,
    {
      "cl.wat": `(module
        (import "wasi_snapshot_preview1" "fd_write"
          (func $fd_write (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 16) "Content-Type: text/plain\\nContent-Length: 2\\n\\nhello")
        (func (export "_start")
          (i32.store (i32.const 0) (i32.const 16))
          (i32.store (i32.const 4) (i32.const 49))
          (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`,
    },
  );
  // The pool, then the server's thread; one keep-alive connection to each.
  for (const [path, flags] of [["the pool", ["--pool-only"]], ["the server's thread", []]]) {
    const server = await startServer(["-c", config, ...flags]);
    try {
      for (let i = 0; i < 3; i++) {
        const response = await fetch(`${server.url}/cl`);
        assertEquals(await response.text(), "hello", `${path}, request ${i}`);
      }
      assertIncludes(server.output().stderr, "declared Content-Length 2 but wrote 5 body bytes");
    } finally {
      await server.stop();
    }
  }
});

Deno.test("a body that trickles is answered 408 at the route's timeout, declared or chunked", async () => {
  const config = await writeConfig(`
[[module]]
route = "/cat"
module = "${fixture("cat.wasm")}"
timeout = 0.5
`);
  const server = await startServer(["-c", config]);
  const port = Number(new URL(server.url).port);
  try {
    for (
      const head of [
        "POST /cat HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n",
        "POST /cat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
      ]
    ) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(new TextEncoder().encode(head + "0123456789"));
      const answer = new Uint8Array(1024);
      const n = await conn.read(answer);
      conn.close();
      assertIncludes(new TextDecoder().decode(answer.subarray(0, n ?? 0)), "HTTP/1.1 408");
    }
  } finally {
    await server.stop();
  }
});

/** The `wagi-spool-` directories in the temp dir now. */
async function spoolDirs(): Promise<string[]> {
  const root = Deno.env.get("TMPDIR") ?? "/tmp";
  const found: string[] = [];
  for await (const entry of Deno.readDir(root)) {
    if (entry.name.startsWith("wagi-spool-")) found.push(`${root}/${entry.name}`);
  }
  return found;
}

/** The bytes of the files in `dir`. */
async function sizeOf(dir: string): Promise<number> {
  let total = 0;
  for await (const entry of Deno.readDir(dir)) {
    total += (await Deno.stat(`${dir}/${entry.name}`)).size;
  }
  return total;
}

Deno.test("a response held while its upload stalls spools a bounded file, gone at exit", async () => {
  const config = await writeConfig(`
[[module]]
route = "/flood"
module = "${fixture("flood.wasm")}"
timeout = 3
`);
  const before = await spoolDirs();
  const server = await startServer(["-c", config, "--max-body", "64MiB"]);
  const port = Number(new URL(server.url).port);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let mine: string[] = [];
  try {
    // The upload declares 40 MB and stops after 10 bytes; the module writes without end. (A
    // smaller one's rest would fit in the memory bodies share: its response would start.)
    await conn.write(
      new TextEncoder().encode(
        "POST /flood HTTP/1.1\r\nHost: x\r\nContent-Length: 40000000\r\n\r\n0123456789",
      ),
    );
    await sleep(2000);
    mine = (await spoolDirs()).filter((dir) => !before.includes(dir));
    const sizes = await Promise.all(mine.map(sizeOf));
    const spooled = Math.max(0, ...sizes);
    assertOk(spooled > 0, "the response was spooled");
    assertOk(spooled <= 64 * 1024 * 1024, `${spooled} bytes spooled for one response`);
  } finally {
    conn.close();
    await server.stop();
  }
  for (const dir of mine) {
    assertEquals(await Deno.stat(dir).then(() => "there", () => "gone"), "gone", dir);
  }
});

Deno.test("host calls cannot hold the server's thread: other requests are answered meanwhile", async () => {
  const config = await writeConfig(`
[[module]]
route = "/random"
module = "${fixture("random_loop.wat")}"
timeout = 3

[[module]]
route = "/hello"
module = "${ROOT}modules/hello.wasm"
`);
  const server = await startServer(["-c", config]);
  try {
    // The first request runs on the server's thread (it waits for its module to be prepared).
    const order: string[] = [];
    const random = fetch(`${server.url}/random`).then(async (r) => {
      await r.body?.cancel();
      order.push("random");
      return r.status;
    });
    await sleep(300);
    const hello = await fetch(`${server.url}/hello`).then((r) => r.text());
    order.push("hello");
    assertEquals(hello, "hello world\n");
    assertEquals(await random, 504, "stopped at its timeout, in the pool");
    assertEquals(order, ["hello", "random"]);
    assertIncludes(server.output().stderr, "host calls ran too long");
  } finally {
    await server.stop();
  }
});

Deno.test("guests that open files until they run out, on a small descriptor limit, do not kill the server", async () => {
  const root = await tempDir("wagi-fds-");
  await Deno.writeTextFile(`${root}/file`, "x");
  const config = await writeConfig(`
[[module]]
route = "/hog"
module = "${fixture("fd_hog.wasm")}"
volumes = { "/v" = "${root}" }
timeout = 5

[[module]]
route = "/hello"
module = "${ROOT}modules/hello.wasm"
`);
  const server = await startServer(
    ["-c", config, "--workers", "4", "--max-open-files", "100"],
    { openFiles: 300 },
  );
  try {
    // Eight at once: 800 descriptors wanted, fewer than 300 for the whole process, with more
    // runs than warm workers and a second server isolate due to start: threads are started
    // (or wait to be) while the descriptors run out, which must never abort the process. A
    // worker that could not load its script for want of one fails its run (500), no more.
    const hogs = await Promise.all(
      Array.from({ length: 8 }, () => fetch(`${server.url}/hog`).then((r) => r.text(), () => "")),
    );
    const workerFailed = "Internal Server Error\n";
    for (const text of hogs.filter((t) => t !== "" && t !== workerFailed)) {
      const opened = Number(text.match(/opened (\d+)/)?.[1]);
      assertOk(opened <= 100 - 4, `a run had ${opened} files open: ${text}`);
      assertOk(/No file descriptors available|Too many open files|table overflow/.test(text), text);
    }
    // Once they are done, the server answers as before.
    let hello = "";
    for (let i = 0; i < 40 && hello !== "hello world\n"; i++) {
      hello = await fetch(`${server.url}/hello`).then((r) => r.text(), () => "");
      if (hello !== "hello world\n") await sleep(100);
    }
    assertEquals(hello, "hello world\n");
  } finally {
    assertEquals(
      (await server.stop()).code,
      0,
      "the server was still running, and stopped cleanly",
    );
  }
});
