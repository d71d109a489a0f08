import { assertEquals, assertOk } from "../_assert.ts";
import { ByteRing, createRing } from "../../src/pool/byte_ring.ts";
import { CHUNK_BYTES, HOLD_MS, RingSink, RingSource } from "../../src/pool/ring_stdio.ts";
import { NEVER_STOPS } from "../../src/wasi/state.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

/** A clock that moves only when told: the tests do not depend on how fast this machine is. */
function fakeClock() {
  let ms = 1000;
  return { now: () => ms, advance: (by: number) => (ms += by) };
}

/** A holding sink on `ring` whose time is `clock`'s. */
const holding = (ring: ByteRing, clock = fakeClock(), limit = Infinity) =>
  new RingSink(ring, NEVER_STOPS, limit, new Uint8Array(CHUNK_BYTES), clock.now);

Deno.test("a holding sink gathers small writes and hands them over as one chunk when full", () => {
  const ring = new ByteRing(createRing(64 * 1024));
  const sink = holding(ring);
  const piece = bytes("1234567\n");
  for (let i = 0; i < 100; i++) sink.write(piece, 0, piece.length);
  assertEquals(ring.buffered, 0, "held, not handed over piece by piece");
  for (let i = 100; i < CHUNK_BYTES / piece.length; i++) sink.write(piece, 0, piece.length);
  assertEquals(ring.buffered, CHUNK_BYTES, "a full chunk goes out at once");
  sink.write(piece, 0, piece.length);
  assertOk(sink.flush());
  assertEquals(ring.buffered, CHUNK_BYTES + piece.length);
});

Deno.test("held output goes out once it is HOLD_MS old, at the next write or refill", () => {
  const ring = new ByteRing(createRing(64 * 1024));
  const clock = fakeClock();
  const sink = holding(ring, clock);
  sink.write(bytes("first\n"), 0, 6);
  clock.advance(HOLD_MS - 0.5);
  sink.flushIfDue();
  assertEquals(ring.buffered, 0);
  clock.advance(1);
  sink.flushIfDue();
  assertEquals(ring.buffered, 6);
  sink.write(bytes("second\n"), 0, 7);
  clock.advance(HOLD_MS + 1);
  sink.write(bytes("third\n"), 0, 6);
  assertEquals(ring.buffered, 19, "a write after HOLD_MS hands everything over");
});

Deno.test("a sink that does not hold, or a write larger than a chunk, goes out at once, in order", () => {
  const ring = new ByteRing(createRing(256 * 1024));
  const plain = new RingSink(ring, NEVER_STOPS);
  plain.write(bytes("a"), 0, 1);
  assertEquals(ring.buffered, 1);
  const sink = holding(ring);
  sink.write(bytes("b"), 0, 1);
  const large = new Uint8Array(CHUNK_BYTES + 1).fill(0x63);
  sink.write(large, 0, large.length);
  assertEquals(ring.buffered, 2 + large.length);
  const out = new Uint8Array(3);
  ring.readSync(out, 0, 3);
  assertEquals(new TextDecoder().decode(out), "abc");
});

Deno.test("a holding sink keeps the output limit: what is past it is dropped and said so", () => {
  const ring = new ByteRing(createRing(64 * 1024));
  const sink = holding(ring, fakeClock(), 10);
  sink.write(bytes("123456"), 0, 6);
  sink.write(bytes("789abc"), 0, 6);
  assertOk(sink.flush());
  assertEquals([ring.buffered, sink.truncated], [10, true]);
});

Deno.test("a source says when it is about to wait for the body, and only then", () => {
  const ring = new ByteRing(createRing(1024));
  let waits = 0;
  const source = new RingSource(ring, NEVER_STOPS, () => waits++);
  ring.writeSync(bytes("body"), 0, 4);
  const into = new Uint8Array(8);
  assertEquals(source.read(into, 0, 8), 4);
  assertEquals(waits, 0, "bytes were there: no wait");
  ring.close();
  assertEquals(source.read(into, 0, 8), 0);
  assertEquals(waits, 0, "the end of the body: no wait");
});
