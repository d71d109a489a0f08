import { assertEquals } from "../_assert.ts";
import { type Snapshot, WasiHost } from "../../src/wasi/host.ts";
import { BytesSource, DISCARD } from "../../src/wasi/streams.ts";
import { Rights } from "../../src/wasi/constants.ts";
import { tempDir } from "../_temp.ts";

/** A host with one preopened directory holding `f` = "hello", its memory and one snapshot's calls. */
async function setup(snapshot: Snapshot) {
  const dir = await tempDir("wagi-p0-");
  await Deno.writeTextFile(`${dir}/f`, "hello");
  const host = new WasiHost({
    args: [],
    env: [],
    stdin: new BytesSource(new Uint8Array()),
    stdout: DISCARD,
    stderr: DISCARD,
    preopens: [{ guestPath: "/", hostPath: dir }],
  });
  const memory = new WebAssembly.Memory({ initial: 1 });
  host.memory.attach(memory);
  const name = snapshot === "preview1" ? "wasi_snapshot_preview1" : "wasi_unstable";
  // deno-lint-ignore no-explicit-any
  const calls = host.imports([snapshot])[name] as Record<string, (...args: any[]) => number>;
  const view = new DataView(memory.buffer);
  new Uint8Array(memory.buffer).set(new TextEncoder().encode("f"), 100);
  const rights = Rights.FD_READ | Rights.FD_SEEK | Rights.FD_TELL | Rights.FD_FILESTAT_GET;
  assertEquals(calls.path_open(3, 0, 100, 1, 0, BigInt(rights), 0n, 0, 200), 0);
  return { calls, view, fd: view.getUint32(200, true) };
}

Deno.test("wasi_unstable numbers whence CUR=0, END=1, SET=2", async () => {
  const { calls, view, fd } = await setup("preview0");
  assertEquals(calls.fd_seek(fd, 0n, 1, 300), 0);
  assertEquals(view.getBigUint64(300, true), 5n, "END");
  assertEquals(calls.fd_seek(fd, 1n, 2, 300), 0);
  assertEquals(view.getBigUint64(300, true), 1n, "SET");
  assertEquals(calls.fd_seek(fd, 2n, 0, 300), 0);
  assertEquals(view.getBigUint64(300, true), 3n, "CUR");
});

Deno.test("wasi_unstable's filestat has a u32 nlink and the size at offset 24", async () => {
  const { calls, view, fd } = await setup("preview0");
  assertEquals(calls.fd_filestat_get(fd, 400), 0);
  assertEquals(view.getUint8(416), 4, "regular file");
  assertEquals(view.getUint32(420, true), 1, "nlink");
  assertEquals(view.getBigUint64(424, true), 5n, "size");
});

Deno.test("preview1's filestat has a u64 nlink and the size at offset 32", async () => {
  const { calls, view, fd } = await setup("preview1");
  assertEquals(calls.fd_filestat_get(fd, 400), 0);
  assertEquals(view.getBigUint64(424, true), 1n, "nlink");
  assertEquals(view.getBigUint64(432, true), 5n, "size");
  assertEquals(calls.fd_seek(fd, 0n, 2, 300), 0);
  assertEquals(view.getBigUint64(300, true), 5n, "END is 2 in preview1");
});

Deno.test("out-of-bounds guest pointers are EFAULT, never an exception", async () => {
  const { calls, fd } = await setup("preview1");
  assertEquals(calls.fd_filestat_get(fd, 65536 - 8), 21);
  assertEquals(calls.fd_seek(fd, 0n, 0, 70000), 21);
});
