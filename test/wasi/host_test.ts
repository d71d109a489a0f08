import { assertEquals, assertOk } from "../_assert.ts";
import { runToEnd } from "../_run.ts";
import { compileFixture, ROOT } from "../_fixtures.ts";
import { inputsOf } from "../../src/wasi/host.ts";
import { tempDir } from "../_temp.ts";

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Runs the fsops fixture with a fresh sandbox and a file just outside it. */
async function runFsops() {
  const root = await tempDir("wagi-wasi-");
  await Deno.mkdir(`${root}/sandbox`);
  await Deno.writeTextFile(`${root}/outside.txt`, "secret");
  const result = await runToEnd({
    module: await compileFixture("fsops.wasm"),
    entrypoint: "_start",
    args: ["fsops", "two words"],
    env: [["FOO", "bar"]],
    stdin: new Uint8Array(),
    preopens: [{ guestPath: "/sandbox", hostPath: `${root}/sandbox` }],
  });
  const lines = new Map<string, string>();
  for (const line of decode(result.stdout).split("\n")) {
    const colon = line.indexOf(": ");
    if (colon !== -1) lines.set(line.slice(0, colon), line.slice(colon + 2));
  }
  return { result, lines, root };
}

Deno.test("a wasi-libc program sees its args and environment", async () => {
  const { lines, result } = await runFsops();
  assertEquals(result.exitCode, 0);
  assertEquals(result.failure, undefined);
  assertEquals(lines.get("argv[0]"), "fsops");
  assertEquals(lines.get("argv[1]"), "two words");
  assertEquals(lines.get("env FOO"), "bar");
});

Deno.test("files in a volume: create, write, append, seek, pread, truncate, stat", async () => {
  const { lines } = await runFsops();
  assertEquals(lines.get("mkdir"), "ok");
  assertEquals(lines.get("mkdir again"), "File exists");
  assertEquals(lines.get("create"), "ok");
  assertEquals(lines.get("read back"), "6 'abcdef'", "append mode writes at the end");
  assertEquals(lines.get("seek end"), "6");
  assertEquals(lines.get("pread at 2"), "4 'cdef'");
  assertEquals(lines.get("tell after pread"), "6", "pread leaves the offset alone");
  assertEquals(lines.get("size after truncate"), "3, regular: 1");
});

Deno.test("renames, symlinks inside the volume, readdir, unlink and rmdir", async () => {
  const { lines, root } = await runFsops();
  assertEquals(lines.get("rename"), "ok");
  assertEquals(lines.get("readlink"), "9 'moved.txt'");
  assertEquals(lines.get("read through link"), "3 'abc'");
  assertEquals(lines.get("lstat link is symlink"), "1");
  assertEquals(lines.get("readdir"), ". .. escape link moved.txt");
  assertEquals(lines.get("rmdir non-empty"), "Directory not empty");
  assertEquals(lines.get("unlink a directory"), "Is a directory");
  assertEquals(lines.get("rmdir"), "ok");
  assertEquals([...Deno.readDirSync(`${root}/sandbox`)], [], "everything was cleaned up");
});

Deno.test("the sandbox holds: .., climbing and absolute symlinks, paths outside preopens", async () => {
  const { lines } = await runFsops();
  assertEquals(lines.get("open .."), "Operation not permitted");
  assertEquals(lines.get("open through climbing symlink"), "Operation not permitted");
  assertEquals(lines.get("absolute symlink"), "Operation not permitted");
  assertEquals(lines.get("open absolute outside"), "Capabilities insufficient");
  assertEquals(lines.get("open missing"), "No such file or directory");
});

Deno.test("clocks advance across a sleep, realtime is real, random_get fills bytes", async () => {
  const { lines } = await runFsops();
  assertEquals(lines.get("slept at least 20ms"), "1");
  assertEquals(lines.get("realtime after 2020"), "1");
  assertEquals(lines.get("random"), "1");
});

Deno.test("stdin is read and stdout written byte for byte, binary included", async () => {
  const input = new Uint8Array(70_000).map((_, i) => (i * 7) % 256);
  const result = await runToEnd({
    module: await compileFixture("cat.wasm"),
    entrypoint: "_start",
    args: ["cat"],
    env: [],
    stdin: input,
    preopens: [],
  });
  assertEquals(result.exitCode, 0);
  assertOk(result.stdout.length === input.length);
  assertEquals(result.stdout, input);
});

Deno.test("a module's imports say whether it can read argv and its environment at all", async () => {
  const bundled = async (name: string) =>
    inputsOf(await WebAssembly.compile(await Deno.readFile(`${ROOT}modules/${name}`)));
  // hello.c neither takes argv nor reads the environment: wasi-libc imports neither call.
  assertEquals(await bundled("hello.wasm"), { args: false, env: false });
  assertEquals(await bundled("env.wasm"), { args: true, env: true });
});
