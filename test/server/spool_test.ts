import { assertEquals, assertOk } from "../_assert.ts";
import { Spooler } from "../../src/server/spool.ts";

/** A BYOB-style reader over `chunks`, then the end. */
function reads(chunks: Uint8Array[]) {
  return (into: Uint8Array<ArrayBuffer>) => {
    const next = chunks.shift();
    if (!next) return Promise.resolve({ done: true as const, value: undefined });
    // A read fills at most the buffer it is given; the rest comes with the next one.
    if (next.length > into.length) chunks.unshift(next.subarray(into.length));
    const n = Math.min(next.length, into.length);
    into.set(next.subarray(0, n));
    return Promise.resolve({ done: false as const, value: into.subarray(0, n) });
  };
}

/** The number of files in `dir` now. */
async function filesIn(dir: string): Promise<number> {
  let count = 0;
  for await (const _ of Deno.readDir(dir)) count++;
  return count;
}

/** The spooler's directory: the one holding `wagi-spool-` in the temp dir, made by it. */
async function dirOf(): Promise<string[]> {
  const root = Deno.env.get("TMPDIR") ?? "/tmp";
  const found: string[] = [];
  for await (const entry of Deno.readDir(root)) {
    if (entry.name.startsWith("wagi-spool-")) found.push(`${root}/${entry.name}`);
  }
  return found;
}

Deno.test("spool: output held while the upload lasts comes back byte for byte, and the file goes", async () => {
  const spooler = new Spooler();
  const before = await dirOf();
  const chunks = [new Uint8Array(70_000).fill(1), new Uint8Array(10).fill(2)];
  const spooled = await spooler.spool(new Uint8Array([9, 9]), reads(chunks), new Promise(() => {}));
  const [dir] = (await dirOf()).filter((d) => !before.includes(d));
  assertEquals(await filesIn(dir), 1);
  assertOk(spooled.ended, "stdout ended while spooling");
  assertEquals(spooled.bytes, 70_012);
  const back = new Uint8Array(await new Response(spooled.stream).arrayBuffer());
  assertEquals(back.length, 70_012);
  assertEquals([back[0], back[2], back[70_001], back[70_002], back[70_011]], [9, 1, 1, 2, 2]);
  // Removal is not awaited by the stream: give it a moment.
  await new Promise((resolve) => setTimeout(resolve, 50));
  assertEquals([await filesIn(dir), spooler.held], [0, 0]);
  await spooler.close();
  assertEquals(await Deno.stat(dir).then(() => "there", () => "gone"), "gone");
});

Deno.test("spool: it stops when the upload ends, keeping the read in flight for later", async () => {
  let release!: () => void;
  const uploadEnded = new Promise<void>((resolve) => (release = resolve));
  const never = () => new Promise<never>(() => {});
  const spooler = new Spooler();
  const pending = spooler.spool(new Uint8Array([1]), never, uploadEnded);
  release();
  const spooled = await pending;
  assertEquals([spooled.ended, spooled.bytes], [false, 1]);
  assertOk(spooled.pending, "the read that was waiting is handed over");
  await spooled.stream.cancel();
  await spooler.close();
});

Deno.test("spool: past its limit it reads no more of stdout until the upload ends", async () => {
  const spooler = new Spooler({ perResponse: 200_000, total: 10_000_000 });
  let reads = 0;
  const endless = (into: Uint8Array<ArrayBuffer>) => {
    reads++;
    return Promise.resolve({ done: false as const, value: into });
  };
  let release!: () => void;
  const uploadEnded = new Promise<void>((resolve) => (release = resolve));
  const pending = spooler.spool(new Uint8Array(), endless, uploadEnded);
  await new Promise((resolve) => setTimeout(resolve, 100));
  const readSoFar = reads;
  assertOk(spooler.held <= 200_000, `spooled ${spooler.held} bytes`);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assertEquals(reads, readSoFar, "stdout is no longer read: the guest waits");
  release();
  const spooled = await pending;
  await spooled.stream.cancel();
  assertEquals(spooler.held, 0);
  await spooler.close();
});
