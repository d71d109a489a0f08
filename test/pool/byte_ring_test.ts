import { assertEquals, assertOk } from "../_assert.ts";
import { ByteRing, createRing, RingStock } from "../../src/pool/byte_ring.ts";

/** `n` bytes that do not repeat with any period a ring size could hide. */
function pattern(n: number): Uint8Array {
  const bytes = new Uint8Array(n);
  for (let i = 0; i < n; i++) bytes[i] = (i * 7 + (i >>> 8) * 13) & 0xff;
  return bytes;
}

/**
 * Runs `body` with the event loop kept alive: a wake-up through `Atomics.waitAsync` on the
 * same thread is a task Deno does not count, so without a timer the loop could end first.
 */
async function awake<T>(body: () => Promise<T>): Promise<T> {
  const timer = setInterval(() => {}, 10);
  try {
    return await body();
  } finally {
    clearInterval(timer);
  }
}

/** Reads a ring to its end with the awaiting consumer calls. */
async function readAll(ring: ByteRing, chunk = 4096): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buffer = new Uint8Array(chunk);
  for (let n; (n = await ring.readInto(buffer)) > 0;) parts.push(buffer.slice(0, n));
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

Deno.test("a ring carries far more than its size, byte for byte, with backpressure", () =>
  awake(async () => {
    const ring = new ByteRing(createRing(1024));
    const data = pattern(300_000);
    // The producer can only be 1 KiB ahead: it waits for the reader again and again.
    const written = (async () => {
      for (let at = 0; at < data.length; at += 777) {
        assertOk(await ring.write(data.subarray(at, at + 777)));
      }
      ring.close();
    })();
    const read = await readAll(ring, 500);
    await written;
    assertEquals(read, data);
  }));

Deno.test("the blocking ends (a guest's stdin and stdout) meet the awaiting ones (the server's)", async () => {
  const input = createRing(4096);
  const output = createRing(4096);
  const worker = new Worker(new URL("./_ring_echo_worker.ts", import.meta.url), {
    type: "module",
  });
  try {
    const finished = new Promise((resolve) => (worker.onmessage = resolve));
    worker.postMessage({ input, output });
    const data = pattern(1_000_000);
    const producer = new ByteRing(input);
    const fed = (async () => {
      for (let at = 0; at < data.length; at += 65536) {
        await producer.write(data.subarray(at, at + 65536));
      }
      producer.close();
    })();
    assertEquals(await readAll(new ByteRing(output)), data);
    await fed;
    await finished;
  } finally {
    worker.terminate();
  }
});

Deno.test("counters that wrap past 2^31 still count exactly", () =>
  awake(async () => {
    const buffer = createRing(64);
    const header = new Int32Array(buffer, 0, 2);
    // Both counters just below the wrap: the next writes and reads cross it.
    header[0] = 0x7fffffff - 10;
    header[1] = 0x7fffffff - 10;
    const ring = new ByteRing(buffer);
    const data = pattern(1000);
    const written = (async () => {
      assertOk(await ring.write(data));
      ring.close();
    })();
    assertEquals(await readAll(ring, 24), data);
    await written;
  }));

Deno.test("a closed ring gives what it holds, then the end; an abandoned one refuses writes", () =>
  awake(async () => {
    const ring = new ByteRing(createRing(64));
    assertOk(await ring.write(new Uint8Array([1, 2, 3])));
    ring.close();
    const target = new Uint8Array(8);
    assertEquals(await ring.readInto(target), 3);
    assertEquals(await ring.readInto(target), 0);

    const abandoned = new ByteRing(createRing(64));
    // A producer waiting for room is woken and told to stop.
    const blocked = abandoned.write(new Uint8Array(200));
    abandoned.abandon();
    assertEquals(await blocked, false);
    assertEquals(abandoned.writeSync(new Uint8Array(4), 0, 4), false);
  }));

Deno.test("a ring taken from the stock again is empty", async () => {
  const stock = new RingStock(64, 1);
  const first = stock.take();
  const ring = new ByteRing(first);
  await ring.write(new Uint8Array([9, 9]));
  ring.close();
  stock.give(first);
  const again = stock.take();
  assertOk(again === first, "the spare ring is reused");
  const reused = new ByteRing(again);
  assertEquals([reused.buffered, reused.closed, reused.abandoned], [0, false, false]);
});
