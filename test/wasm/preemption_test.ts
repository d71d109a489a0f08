import { assertEquals, assertOk } from "../_assert.ts";
import { addFunctionImport } from "../../src/wasm/function_import.ts";
import { makePreemptible } from "../../src/wasm/preemption.ts";
import { PREEMPT_FUEL, PREEMPT_FUNCTION, PREEMPT_MODULE } from "../../src/wasm/contract.ts";
import { watToWasm } from "../../src/wasm/wat.ts";
import { everyModule } from "../_fixtures.ts";

/** A module that uses a function index in every place one can stand. */
const EVERY_INDEX = `(module
  (import "env" "log" (func $log (param i32)))
  (type $unary (func (param i32) (result i32)))
  (table $t 4 funcref)
  (elem (i32.const 0) $double $triple)
  (elem $passive funcref (ref.func $square))
  (elem declare func $start)
  (global $ref (mut funcref) (ref.func $double))
  (global $started (mut i32) (i32.const 0))
  (func $double (type $unary) (i32.mul (local.get 0) (i32.const 2)))
  (func $triple (type $unary) (i32.mul (local.get 0) (i32.const 3)))
  (func $square (type $unary) (i32.mul (local.get 0) (local.get 0)))
  (func $start (global.set $started (i32.const 7)) (call $log (i32.const 1)))
  (start $start)
  (func (export "direct") (param i32) (result i32) (call $triple (local.get 0)))
  (func (export "indirect") (param i32 i32) (result i32)
    (call_indirect (type $unary) (local.get 0) (local.get 1)))
  (func (export "passive") (param i32) (result i32)
    (table.init $t $passive (i32.const 2) (i32.const 0) (i32.const 1))
    (call_indirect (type $unary) (local.get 0) (i32.const 2)))
  (func (export "from_global") (param i32) (result i32)
    (table.set $t (i32.const 3) (global.get $ref))
    (call_indirect (type $unary) (local.get 0) (i32.const 3)))
  (func (export "tail") (param i32) (result i32) (return_call $square (local.get 0)))
  (func (export "started") (result i32) (global.get $started))
  (export "square" (func $square)))`;

/** The exports of `wasm` instantiated with `env.log` counting its calls, and `extra`. */
function instantiate(wasm: Uint8Array, extra: WebAssembly.Imports = {}) {
  const logged: number[] = [];
  const instance = new WebAssembly.Instance(new WebAssembly.Module(wasm as BufferSource), {
    env: { log: (n: number) => logged.push(n) },
    ...extra,
  });
  const e = instance.exports as Record<string, (...args: number[]) => number>;
  return {
    logged,
    results: [
      e.direct(5),
      e.indirect(5, 0),
      e.indirect(5, 1),
      e.passive(5),
      e.from_global(5),
      e.tail(5),
      e.started(),
      e.square(4),
    ],
  };
}

Deno.test("a function import renumbers every function index the module uses", async () => {
  const wasm = await watToWasm("every.wat", EVERY_INDEX);
  const before = instantiate(wasm);
  assertEquals(before.results, [15, 10, 15, 25, 10, 25, 7, 16]);
  const added = addFunctionImport(wasm, "host", "f", [], [0x7f]);
  assertEquals(added.index, 1, "after the module's one imported function");
  let called = 0;
  const after = instantiate(added.bytes, { host: { f: () => ++called } });
  assertEquals(after.results, before.results);
  assertEquals(after.logged, before.logged);
  assertEquals(called, 0, "nothing calls the new import by itself");
});

Deno.test("a preemptible endless loop asks the host for fuel, and traps when told to stop", async () => {
  const wasm = makePreemptible(
    await watToWasm("spin.wat", `(module (func (export "spin") (loop $l (br $l))))`),
  );
  let asked = 0;
  const instance = new WebAssembly.Instance(new WebAssembly.Module(wasm as BufferSource), {
    [PREEMPT_MODULE]: { [PREEMPT_FUNCTION]: () => (++asked < 5 ? PREEMPT_FUEL : -1) },
  });
  let trapped: unknown;
  try {
    (instance.exports.spin as () => void)();
  } catch (error) {
    trapped = error;
  }
  assertOk(trapped instanceof WebAssembly.RuntimeError, `expected a trap, got ${trapped}`);
  assertEquals(asked, 5);
});

Deno.test("a preemptible module that ends on its own never needs to ask", async () => {
  const wasm = makePreemptible(await watToWasm("every.wat", EVERY_INDEX));
  let asked = 0;
  const preempt = { [PREEMPT_MODULE]: { [PREEMPT_FUNCTION]: () => (asked++, PREEMPT_FUEL) } };
  assertEquals(instantiate(wasm, preempt).results, [15, 10, 15, 25, 10, 25, 7, 16]);
  assertEquals(asked, 0);
});

Deno.test("every bundled and fixture module becomes preemptible and still validates", async () => {
  for await (const { name, bytes } of everyModule()) {
    const preemptible = makePreemptible(bytes);
    assertOk(WebAssembly.validate(preemptible as BufferSource), `${name} no longer validates`);
  }
});
