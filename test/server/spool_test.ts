import { assertEquals, assertOk } from "../_assert.ts";
import { spool } from "../../src/server/spool.ts";

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

/** The spool files of this process that exist now. */
async function spoolFiles(): Promise<string[]> {
  const dir = Deno.env.get("TMPDIR") ?? "/tmp";
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.startsWith("wagi-spool-")) names.push(entry.name);
  }
  return names;
}

Deno.test("spool: output held while the upload lasts comes back byte for byte, and the file goes", async () => {
  const before = await spoolFiles();
  const chunks = [new Uint8Array(70_000).fill(1), new Uint8Array(10).fill(2)];
  const spooled = await spool(new Uint8Array([9, 9]), reads(chunks), new Promise(() => {}));
  assertOk(spooled.ended, "stdout ended while spooling");
  assertEquals(spooled.bytes, 70_012);
  const back = new Uint8Array(await new Response(spooled.stream).arrayBuffer());
  assertEquals(back.length, 70_012);
  assertEquals([back[0], back[2], back[70_001], back[70_002], back[70_011]], [9, 1, 1, 2, 2]);
  // Removal is not awaited by the stream: give it a moment.
  await new Promise((resolve) => setTimeout(resolve, 50));
  assertEquals(await spoolFiles(), before);
});

Deno.test("spool: it stops when the upload ends, keeping the read in flight for later", async () => {
  let release!: () => void;
  const uploadEnded = new Promise<void>((resolve) => (release = resolve));
  const never = () => new Promise<never>(() => {});
  const pending = spool(new Uint8Array([1]), never, uploadEnded);
  release();
  const spooled = await pending;
  assertEquals([spooled.ended, spooled.bytes], [false, 1]);
  assertOk(spooled.pending, "the read that was waiting is handed over");
  await spooled.stream.cancel();
});
