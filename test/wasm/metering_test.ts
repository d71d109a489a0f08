import { assertEquals, assertOk, assertThrows } from "../_assert.ts";
import { HOST_CALL_COST, meter } from "../../src/wasm/metering.ts";
import { FUEL_EXPORT, GROW_REFUSED_EXPORT, STATE_GLOBAL_PREFIX } from "../../src/wasm/contract.ts";
import { watToWasm } from "../../src/wasm/wat.ts";
import { WasmFormatError } from "../../src/wasm/binary.ts";
import { everyModule } from "../_fixtures.ts";

/** `fn` traps (a WebAssembly RuntimeError). */
function assertTraps(fn: () => unknown): void {
  let trapped = false;
  try {
    fn();
  } catch (error) {
    trapped = error instanceof WebAssembly.RuntimeError;
  }
  assertOk(trapped, "expected a trap");
}

/** An instance of `wat` metered, with fuel for a million instructions. */
async function meteredInstance(wat: string) {
  const metered = meter(await watToWasm("test.wat", wat));
  const instance = new WebAssembly.Instance(new WebAssembly.Module(metered.bytes as BufferSource));
  const fuel = instance.exports[FUEL_EXPORT] as WebAssembly.Global;
  fuel.value = 1_000_000;
  return { metered, exports: instance.exports, fuel };
}

Deno.test("a metered endless loop traps once its fuel is spent, and the counter shows it", async () => {
  const { exports, fuel } = await meteredInstance(`(module
    (func (export "spin") (loop $l (br $l))))`);
  fuel.value = 1000;
  assertTraps(() => (exports.spin as () => void)());
  assertOk((fuel.value as number) < 0, `fuel left: ${fuel.value}`);
});

Deno.test("a metered loop computes the same result and pays in proportion to its passes", async () => {
  const { exports, fuel } = await meteredInstance(`(module
    (func (export "sum") (param $n i32) (result i32) (local $total i32)
      (block $done
        (loop $next
          (br_if $done (i32.eqz (local.get $n)))
          (local.set $total (i32.add (local.get $total) (local.get $n)))
          (local.set $n (i32.sub (local.get $n) (i32.const 1)))
          (br $next)))
      (local.get $total)))`);
  const sum = exports.sum as (n: number) => number;
  const used = (n: number) => {
    fuel.value = 1_000_000;
    const result = sum(n);
    return [result, 1_000_000 - (fuel.value as number)];
  };
  const [ten, tenCost] = used(10);
  const [hundred, hundredCost] = used(100);
  assertEquals([ten, hundred], [55, 5050]);
  // Each pass costs the same: 90 more passes, 9 times the cost of the first 10 (entry aside).
  const entry = tenCost - 11 * ((hundredCost - tenCost) / 90);
  assertEquals(hundredCost - entry, 101 * ((hundredCost - tenCost) / 90));
});

Deno.test("recursion without loops is charged at every call, so it runs out too", async () => {
  const { exports, fuel } = await meteredInstance(`(module
    (func $fib (export "fib") (param $n i32) (result i32)
      (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
        (then (local.get $n))
        (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                       (call $fib (i32.sub (local.get $n) (i32.const 2))))))))`);
  fuel.value = 1_000_000;
  assertEquals((exports.fib as (n: number) => number)(10), 55);
  fuel.value = 1_000_000;
  assertTraps(() => (exports.fib as (n: number) => number)(40));
  assertOk((fuel.value as number) < 0);
});

Deno.test("bulk memory instructions are charged for their length", async () => {
  const { exports, fuel } = await meteredInstance(`(module
    (memory 16)
    (func (export "fill") (param $n i32) (memory.fill (i32.const 0) (i32.const 7) (local.get $n))))`);
  const fill = exports.fill as (n: number) => void;
  fuel.value = 1_000_000;
  fill(1000);
  const small = 1_000_000 - (fuel.value as number);
  fuel.value = 1_000_000;
  fill(1_000_000);
  const large = 1_000_000 - (fuel.value as number);
  assertOk(large - small >= 400_000, `a 1 MB fill cost ${large}, a 1 kB one ${small}`);
  fuel.value = 1000;
  assertTraps(() => fill(1_000_000));
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

Deno.test("a module whose memory is not exported is not reused: it could not be put back", async () => {
  // A component's core module need not export its memory; it would keep its bytes between runs.
  const hidden = await meteredInstance(`(module (memory 1)
    (func (export "bump") (i32.store (i32.const 8) (i32.add (i32.load (i32.const 8)) (i32.const 1)))))`);
  assertEquals(hidden.metered.notReusable, "its memory is not exported: it could not be put back");
  const shown = await meteredInstance(`(module (memory (export "memory") 1))`);
  assertEquals(shown.metered.notReusable, undefined);
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
  for await (const { name, bytes } of everyModule()) {
    const metered = meter(bytes);
    assertOk(WebAssembly.validate(metered.bytes as BufferSource), `${name} no longer validates`);
    const exports = WebAssembly.Module.exports(
      new WebAssembly.Module(metered.bytes as BufferSource),
    );
    assertOk(exports.some((e) => e.name === FUEL_EXPORT), `${name} has no fuel export`);
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

Deno.test("the fuel starts full for a start function, which the metered module reports", async () => {
  const wat = `(module
    (global $ran (export "ran") (mut i32) (i32.const 0))
    (func $init (loop $twice (global.set $ran (i32.add (global.get $ran) (i32.const 1)))
      (br_if $twice (i32.lt_u (global.get $ran) (i32.const 2)))))
    (start $init))`;
  const metered = meter(await watToWasm("start.wat", wat), 1000);
  // Whether its instances are reused is the runner's call (did the start call the host?).
  assertEquals([metered.hasStart, metered.notReusable], [true, undefined]);
  const instance = new WebAssembly.Instance(new WebAssembly.Module(metered.bytes as BufferSource));
  assertEquals((instance.exports.ran as WebAssembly.Global).value, 2);
  assertOk(((instance.exports[FUEL_EXPORT] as WebAssembly.Global).value as number) < 1000);
});

Deno.test("each call of a host function costs fuel of its own, so host-call loops run out too", async () => {
  const wat = `(module
    (import "env" "tick" (func $tick))
    (func (export "ticks") (param $n i32)
      (loop $l
        (call $tick)
        (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))))`;
  const metered = meter(await watToWasm("ticks.wat", wat));
  let ticks = 0;
  const instance = new WebAssembly.Instance(new WebAssembly.Module(metered.bytes as BufferSource), {
    env: { tick: () => ticks++ },
  });
  const fuel = instance.exports[FUEL_EXPORT] as WebAssembly.Global;
  fuel.value = 1_000_000;
  (instance.exports.ticks as (n: number) => void)(100);
  const spent = 1_000_000 - (fuel.value as number);
  assertOk(spent >= 100 * HOST_CALL_COST, `100 host calls cost ${spent}`);
  fuel.value = 1_000_000;
  assertTraps(() => (instance.exports.ticks as (n: number) => void)(10_000));
  assertOk(ticks < 1_100, `ran ${ticks} host calls on a budget of about 1,000`);
});
