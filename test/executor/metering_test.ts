import { assertEquals, assertOk, assertThrows } from "../_assert.ts";
import {
  FUEL_EXPORT,
  GROW_REFUSED_EXPORT,
  meter,
  STATE_GLOBAL_PREFIX,
} from "../../src/executor/metering.ts";
import { watToWasm } from "../../src/executor/module_cache.ts";
import { WasmFormatError } from "../../src/executor/wasm_binary.ts";
import { ROOT } from "../_fixtures.ts";

async function meteredInstance(wat: string) {
  const metered = meter(await watToWasm("test.wat", wat));
  const instance = new WebAssembly.Instance(new WebAssembly.Module(metered.bytes as BufferSource));
  return {
    metered,
    exports: instance.exports,
    fuel: instance.exports[FUEL_EXPORT] as WebAssembly.Global,
  };
}

Deno.test("a metered endless loop traps once its fuel is spent, and the counter shows 0", async () => {
  const { exports, fuel } = await meteredInstance(`(module
    (func (export "spin") (loop $l (br $l))))`);
  fuel.value = 1000;
  let trapped = false;
  try {
    (exports.spin as () => void)();
  } catch (error) {
    trapped = error instanceof WebAssembly.RuntimeError;
  }
  assertOk(trapped, "the loop should have trapped");
  assertEquals(fuel.value, 0);
});

Deno.test("a metered loop computes the same result and pays one unit per pass", async () => {
  const { exports, fuel } = await meteredInstance(`(module
    (func (export "sum") (param $n i32) (result i32) (local $total i32)
      (block $done
        (loop $next
          (br_if $done (i32.eqz (local.get $n)))
          (local.set $total (i32.add (local.get $total) (local.get $n)))
          (local.set $n (i32.sub (local.get $n) (i32.const 1)))
          (br $next)))
      (local.get $total)))`);
  fuel.value = 100;
  assertEquals((exports.sum as (n: number) => number)(10), 55);
  // Ten passes that add, and the eleventh that leaves.
  assertEquals(fuel.value, 100 - 11);
});

Deno.test("mutable globals are exported for restoring; constant ones are not", async () => {
  const { metered, exports } = await meteredInstance(`(module
    (global $constant i32 (i32.const 1))
    (global $counter (mut i32) (i32.const 7))
    (global $wide (mut i64) (i64.const 9))
    (func (export "bump") (global.set $counter (i32.add (global.get $counter) (i32.const 1)))))`);
  assertEquals(metered.stateGlobals, [1, 2]);
  assertEquals(metered.notReusable, undefined);
  const counter = exports[STATE_GLOBAL_PREFIX + 1] as WebAssembly.Global;
  (exports.bump as () => void)();
  assertEquals(counter.value, 8);
  assertEquals((exports[STATE_GLOBAL_PREFIX + 2] as WebAssembly.Global).value, 9n);
  assertEquals(exports[STATE_GLOBAL_PREFIX + 0], undefined);
});

Deno.test("a module that can change its tables or drop segments is not reused", async () => {
  const { metered } = await meteredInstance(`(module
    (table 1 funcref)
    (func $f)
    (func (export "clear") (table.set (i32.const 0) (ref.null func))))`);
  assertOk(metered.notReusable?.includes("tables"), metered.notReusable);
});

Deno.test("an instruction the reader does not know is refused, not copied blindly", () => {
  // type () -> (), one function whose body is `try end end` (exception handling, 0x06).
  const wasm = new Uint8Array([
    0,
    0x61,
    0x73,
    0x6d,
    1,
    0,
    0,
    0,
    1,
    4,
    1,
    0x60,
    0,
    0,
    3,
    2,
    1,
    0,
    10,
    7,
    1,
    5,
    0,
    0x06,
    0x40,
    0x0b,
    0x0b,
  ]);
  assertThrows(() => meter(wasm), WasmFormatError, "unsupported opcode 0x6");
});

Deno.test("every bundled and fixture module meters into a valid module", async () => {
  for (const dir of ["modules", "test/fixtures"]) {
    for await (const entry of Deno.readDir(`${ROOT}${dir}`)) {
      const path = `${ROOT}${dir}/${entry.name}`;
      let bytes: Uint8Array;
      if (entry.name.endsWith(".wasm")) bytes = await Deno.readFile(path);
      else if (entry.name.endsWith(".wat")) {
        bytes = await watToWasm(path, await Deno.readTextFile(path));
      } else continue;
      const metered = meter(bytes);
      assertOk(
        WebAssembly.validate(metered.bytes as BufferSource),
        `${entry.name} no longer validates`,
      );
      const exports = WebAssembly.Module.exports(
        new WebAssembly.Module(metered.bytes as BufferSource),
      );
      assertOk(exports.some((e) => e.name === FUEL_EXPORT), `${entry.name} has no fuel export`);
    }
  }
});

Deno.test("a refused memory.grow raises the flag and still returns -1 to the guest", async () => {
  const { exports } = await meteredInstance(`(module
    (memory (export "memory") 1 2)
    (func (export "grow") (param $pages i32) (result i32) (memory.grow (local.get $pages))))`);
  const grow = exports.grow as (pages: number) => number;
  const refused = exports[GROW_REFUSED_EXPORT] as WebAssembly.Global;
  assertEquals([grow(1), refused.value], [1, 0]);
  assertEquals([grow(1), refused.value], [-1, 1]);
});
