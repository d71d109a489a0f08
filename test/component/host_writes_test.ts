/**
 * Seeing what jco's code writes into guest memory: its code read for the ways it writes, and the
 * writes marked as they happen (the runner's part; runner_test checks the whole, by checksum).
 * @module
 */

import { assertEquals, assertOk } from "../_assert.ts";
import { HostWriteMarks, scanHostWrites } from "../../src/component/host_writes.ts";
import { CHUNK_BITS } from "../../src/wasm/contract.ts";
import { watToWasm } from "../../src/wasm/wat.ts";

/** A trampoline as jco writes one: a list allocated through realloc, its place at a return area. */
const TRAMPOLINE = `
  function trampoline7(arg0, arg1) {
    var val3 = ret;
    var len3 = val3.length;
    var ptr3 = realloc0(0, 0, 1, len3 * 1);
    var src3 = new Uint8Array(val3.buffer, val3.byteOffset, len3 * 1);
    (new Uint8Array(memory0.buffer, ptr3, len3 * 1)).set(src3);
    dataView(memory0).setInt8(arg1 + 0, 0, true);
    dataView(memory0).setUint32(arg1 + 8, len3, true);
    dataView(memory0).setUint32(arg1 + 4, ptr3, true);
    var result5 = realloc0(0, 0, 4, 2 * 8);
    for (let i = 0; i < 2; i++) {
      const base = result5 + i * 8;
      dataView(memory0).setInt32(base + 0, i, true);
    }
    var text = utf8Decoder.decode(new Uint8Array(memory0.buffer, ptr3, len3));
    var flag = dataView(memory0).getInt32(arg0 + 0, true);
  }
  function utf8Encode(s, realloc, memory) {
    let buf = utf8Encoder.encode(s);
    let ptr = realloc(0, 0, 1, buf.length);
    new Uint8Array(memory.buffer).set(buf, ptr);
    return ptr;
  }`;

Deno.test("host writes: jco's ways of writing are understood, and its largest return area learnt", () => {
  // The furthest write is a u32 at offset 8: twelve bytes.
  assertEquals(scanHostWrites(TRAMPOLINE), { returnAreaBytes: 12 });
});

Deno.test("host writes: any other write into guest memory leaves the component untracked, saying why", () => {
  const cases: [string, string | RegExp][] = [
    [
      TRAMPOLINE.replace("setInt8(arg1 + 0", "setInt8(arg0 + 0"),
      "it writes at arg0, not the last argument of a host function",
    ],
    [
      TRAMPOLINE.replace("function trampoline7(", "function lowerResult("),
      "it writes at arg1, not the last argument of a host function",
    ],
    [
      TRAMPOLINE.replace("var ptr3 = realloc0(0, 0, 1, len3 * 1);", "var ptr3 = arg0;"),
      "it writes bytes where it did not allocate",
    ],
    [
      TRAMPOLINE.replace("const base = result5 + i * 8;", "const base = arg0 + i * 8;"),
      "it writes a list element it did not allocate",
    ],
    [
      TRAMPOLINE + "\n new Uint16Array(memory0.buffer, ptr3, 2)[0] = 1;",
      /unknown way/,
    ],
    [TRAMPOLINE + "\n dv.setInt32(0, 1);", "it writes through its DataView directly"],
    [
      TRAMPOLINE + "\n const t = new WebAssembly.Suspending(async function(arg0) {});",
      "it makes host functions a guest waits on itself",
    ],
  ];
  for (const [js, why] of cases) {
    const found = scanHostWrites(js);
    assertOk(typeof found === "string", `accepted: ${js.slice(-80)}`);
    if (typeof why === "string") assertEquals(found, why);
    else assertOk(why.test(found as string), found as string);
  }
});

/** The chunks marked in `map`. */
const marked = (map: Uint8Array) => [...map.keys()].filter((chunk) => map[chunk] !== 0);

Deno.test("host writes: a host function marks its return area, a realloc what it hands out", async () => {
  const map = new Uint8Array(4 * 1024 * 1024);
  const marks = new HostWriteMarks(100);
  marks.addMap(map);
  const core = new WebAssembly.Instance(
    new WebAssembly.Module(
      await watToWasm(
        "r.wat",
        `(module
          (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 5000))
          (func (export "other") (param i32) (result i32) (local.get 0)))`,
      ) as BufferSource,
    ),
  );
  const { exports } = marks.exports(core);
  const realloc = exports.cabi_realloc as (...args: number[]) => number;
  assertEquals(realloc(0, 0, 1, 3000), 5000);
  assertEquals(marked(map), [4, 5, 6, 7]);
  // Other exports are passed on as they are.
  assertEquals(exports.other, core.exports.other);

  map.fill(0);
  const calls: unknown[][] = [];
  const imports = marks.imports({
    host: { call: (...args: unknown[]) => calls.push(args) },
    // Functions of core modules, and our wrapper of one, are linked directly.
    core: { realloc: exports.cabi_realloc, other: exports.other },
  })!;
  assertEquals(imports.core.realloc, core.exports.cabi_realloc);
  assertEquals(imports.core.other, core.exports.other);
  (imports.host.call as (...args: number[]) => void)(7, 2040);
  assertEquals(calls, [[7, 2040]]);
  // 100 bytes from 2040: chunks 1 and 2.
  assertEquals(marked(map), [1, 2]);
  // An address above 2 GiB arrives as a negative i32.
  map.fill(0);
  (imports.host.call as (...args: number[]) => void)(-(1 << 30));
  assertEquals(marked(map), [(3 << 30) >>> CHUNK_BITS]);
  // One that ends past 4 GiB marks up to there (rather than wrapping around to nothing).
  map.fill(0);
  (imports.host.call as (...args: number[]) => void)(-16);
  assertEquals(marked(map), [(2 ** 32 - 1) >>> CHUNK_BITS]);
});

Deno.test("host writes: an import of a kind not understood is refused", () => {
  const marks = new HostWriteMarks(8);
  assertEquals(marks.imports({ host: { thing: { not: "a function" } as never } }), undefined);
});
