import { assertEquals, assertThrows } from "../_assert.ts";
import { limitMemory, WASM_PAGE_BYTES } from "../../src/wasm/memory_limit.ts";
import { watToWasm } from "../../src/wasm/wat.ts";

const grow = (memory: string) =>
  watToWasm(
    "m.wat",
    `(module ${memory} (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))`,
  );

async function instantiate(bytes: Uint8Array) {
  const { instance } = await WebAssembly.instantiate(new Uint8Array(bytes));
  return instance.exports.grow as (pages: number) => number;
}

Deno.test("memory.grow fails at the limit once the module is capped", async () => {
  const capped = limitMemory(await grow(`(memory 1)`), 4 * WASM_PAGE_BYTES);
  const growBy = await instantiate(capped);
  assertEquals(growBy(3), 1, "up to the limit works");
  assertEquals(growBy(1), -1, "past it fails inside the guest");
});

Deno.test("a smaller declared maximum is kept", async () => {
  const growBy = await instantiate(limitMemory(await grow(`(memory 1 2)`), 100 * WASM_PAGE_BYTES));
  assertEquals(growBy(2), -1);
  assertEquals(growBy(1), 1);
});

Deno.test("a module whose initial memory is over the limit is refused, naming both", async () => {
  const big = await grow(`(memory 10)`);
  assertThrows(() => limitMemory(big, 2 * WASM_PAGE_BYTES), Error, "above the limit of 131072");
});

Deno.test("modules without memory come back unchanged", async () => {
  const none = await watToWasm("m.wat", `(module (func (export "f")))`);
  assertEquals(limitMemory(none, WASM_PAGE_BYTES), none);
});
