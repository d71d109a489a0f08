import { assertEquals, assertOk } from "../_assert.ts";
import { trackWrites } from "../../src/wasm/write_tracking.ts";
import {
  CHUNK_BITS,
  CHUNK_MAP_EXPORT,
  CHUNK_MAP_IMPORT,
  markChunks,
} from "../../src/wasm/contract.ts";
import { meter } from "../../src/wasm/metering.ts";
import { limitMemory } from "../../src/wasm/memory_limit.ts";
import { watToWasm } from "../../src/wasm/wat.ts";
import { GuestMemory } from "../../src/wasi/memory.ts";
import { everyModule } from "../_fixtures.ts";

const MIB = 1024 * 1024;

/** The indices of the chunks marked in a chunk map. */
const marked = (map: Uint8Array) => [...map.keys()].filter((chunk) => map[chunk] !== 0);

/** The chunks that `length` bytes from `at` fall in. */
function chunksOf(at: number, length: number): number[] {
  const chunks = [];
  for (let chunk = at >>> CHUNK_BITS; chunk <= (at + length - 1) >>> CHUNK_BITS; chunk++) {
    chunks.push(chunk);
  }
  return chunks;
}

Deno.test("stores mark their chunk in the chunk map before writing; fills mark their range", async () => {
  const wasm = await watToWasm(
    "t.wat",
    `(module (memory (export "memory") 1 1)
       (func (export "poke") (param $at i32) (param $v i64)
         (i64.store offset=2 (local.get $at) (local.get $v)))
       (func (export "fill") (param $at i32) (param $n i32)
         (memory.fill (local.get $at) (i32.const 1) (local.get $n))))`,
  );
  const tracked = trackWrites(wasm);
  assertOk(typeof tracked !== "string", String(tracked));
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(tracked as BufferSource));
  const map = new Uint8Array((exports[CHUNK_MAP_EXPORT] as WebAssembly.Memory).buffer);
  const memory = new Uint8Array((exports.memory as WebAssembly.Memory).buffer);
  // A store marks the chunk of its first byte (the address plus the offset).
  (exports.poke as (at: number, v: bigint) => void)(8190, 0x0102030405060708n);
  assertEquals(marked(map), chunksOf(8192, 1));
  assertEquals(memory[8192], 8);
  (exports.fill as (at: number, n: number) => void)(4095, 4098);
  assertEquals(marked(map), chunksOf(4095, 4098));
  (exports.fill as (at: number, n: number) => void)(16384, 0);
  assertEquals(marked(map), chunksOf(4095, 4098), "an empty fill marked a chunk");
});

Deno.test("host writes mark the chunks they touch; reads do not", () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const map = new Uint8Array(65536 >>> CHUNK_BITS);
  const guest = new GuestMemory();
  guest.attach(memory, (at, length) => markChunks(map, at, length));
  guest.setU32(4094, 1);
  guest.write(20000, new Uint8Array(5000));
  guest.slice(40000, 100);
  guest.u32(50000);
  assertEquals(marked(map), [...chunksOf(4094, 4), ...chunksOf(20000, 5000)]);
});

Deno.test("host access follows a memory that grew (its old buffer is detached)", () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 2 });
  const guest = new GuestMemory();
  guest.attach(memory);
  guest.setU32(0, 1);
  memory.grow(1);
  guest.setU32(70000, 7);
  assertEquals(guest.u32(70000), 7);
  assertEquals(guest.bytes.length, 2 * 65536);
});

Deno.test("a module sharing another's memory marks the owner's chunk map; a memory without a maximum gets a map for 4 GiB", async () => {
  const owner = trackWrites(
    await watToWasm("o.wat", `(module (memory (export "memory") 2))`),
    { mapForAnySize: true, importedMemory: true },
  );
  assertOk(typeof owner !== "string", String(owner));
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(owner as BufferSource));
  const mapMemory = exports[CHUNK_MAP_EXPORT] as WebAssembly.Memory;
  // 64 pages of map, one byte for each KiB of 4 GiB; reserved, not resident.
  assertEquals(mapMemory.buffer.byteLength, 64 * 65536);
  const sharer = trackWrites(
    await watToWasm(
      "s.wat",
      `(module (import "env" "memory" (memory 1))
         (func (export "poke") (param $at i32) (i32.store8 (local.get $at) (i32.const 9))))`,
    ),
    { mapForAnySize: true, importedMemory: true },
  );
  assertOk(typeof sharer !== "string", String(sharer));
  const [module, name] = CHUNK_MAP_IMPORT;
  const shared = new WebAssembly.Instance(new WebAssembly.Module(sharer as BufferSource), {
    env: { memory: exports.memory },
    [module]: { [name]: mapMemory },
  });
  (shared.exports.poke as (at: number) => void)(70000);
  assertEquals(marked(new Uint8Array(mapMemory.buffer)), chunksOf(70000, 1));
  assertEquals(new Uint8Array((exports.memory as WebAssembly.Memory).buffer)[70000], 9);
});

Deno.test("modules whose writes cannot all be seen are not tracked, and say why", async () => {
  const why = async (wat: string) => trackWrites(await watToWasm("t.wat", wat));
  assertEquals(
    await why(`(module (import "env" "m" (memory 1)))`),
    "it imports its memory",
  );
  assertEquals(
    await why(`(module (memory 1))`),
    "its memory may grow past what the chunk map covers",
  );
  assertEquals(await why(`(module (func))`), "it has no memory");
});

Deno.test("every bundled and fixture module tracks its writes and still validates", async () => {
  for await (const { name, bytes } of everyModule()) {
    const tracked = trackWrites(meter(limitMemory(bytes, 16 * MIB)).bytes);
    if (typeof tracked === "string") {
      // Only modules without a memory of their own.
      assertEquals(tracked, "it has no memory", name);
      continue;
    }
    assertOk(WebAssembly.validate(tracked as BufferSource), `${name} no longer validates`);
  }
});
