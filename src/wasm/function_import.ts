/**
 * Adding a function import to a module. Imported functions come first in the function index
 * space, so every index of a function the module defines moves up by one: in calls, `ref.func`,
 * exports, the start function, element segments and global initialisers. The `name` section,
 * which only names things for debuggers, is dropped rather than renumbered.
 * @module
 */

import {
  appendToVector,
  concatBytes,
  importCounts,
  placeSection,
  readInstruction,
  readSections,
  readU32,
  SectionId,
  skipLeb,
  skipLimits,
  skipValType,
  WasmFormatError,
  writeName,
  writeSections,
  writeU32,
} from "./binary.ts";

/** Opcodes whose immediate is a function index. */
const CALL = 0x10;
const RETURN_CALL = 0x12;
const REF_FUNC = 0xd2;

/** Renumbers function indices at and above `from` by one. */
type Shift = (index: number) => number;

/**
 * Copies the instructions in `[start, end)` (a function body or a constant expression),
 * renumbering the function index of every call, `return_call` and `ref.func`.
 */
function shiftCode(payload: Uint8Array, start: number, end: number, shift: Shift): Uint8Array {
  const parts: (Uint8Array | number[])[] = [];
  let copied = start;
  for (let cursor = start; cursor < end;) {
    const op = payload[cursor];
    const [next] = readInstruction(payload, cursor);
    if (op === CALL || op === RETURN_CALL || op === REF_FUNC) {
      const [index] = readU32(payload, cursor + 1);
      parts.push(payload.subarray(copied, cursor), [op, ...writeU32(shift(index))]);
      copied = next;
    }
    cursor = next;
  }
  parts.push(payload.subarray(copied, end));
  return concatBytes(parts);
}

/** The end of the constant expression at `at` (just past its `end`). */
function constExprEnd(payload: Uint8Array, at: number): number {
  for (;;) {
    const op = payload[at];
    at = readInstruction(payload, at)[0];
    if (op === 0x0b) return at;
  }
}

function shiftCodeSection(payload: Uint8Array, shift: Shift): Uint8Array {
  let [count, at] = readU32(payload, 0);
  const parts: (Uint8Array | number[])[] = [writeU32(count)];
  for (let f = 0; f < count; f++) {
    const [size, bodyStart] = readU32(payload, at);
    const end = bodyStart + size;
    let [groups, cursor] = readU32(payload, bodyStart);
    for (let i = 0; i < groups; i++) cursor = skipValType(payload, skipLeb(payload, cursor));
    const body = concatBytes([
      payload.subarray(bodyStart, cursor),
      shiftCode(payload, cursor, end, shift),
    ]);
    parts.push(writeU32(body.length), body);
    at = end;
  }
  return concatBytes(parts);
}

function shiftExports(payload: Uint8Array, shift: Shift): Uint8Array {
  let [count, at] = readU32(payload, 0);
  const parts: (Uint8Array | number[])[] = [writeU32(count)];
  for (let i = 0; i < count; i++) {
    const [length, nameStart] = readU32(payload, at);
    const kind = payload[nameStart + length];
    const [index, next] = readU32(payload, nameStart + length + 1);
    parts.push(
      payload.subarray(at, nameStart + length + 1),
      writeU32(kind === 0 ? shift(index) : index),
    );
    at = next;
  }
  return concatBytes(parts);
}

function shiftGlobals(payload: Uint8Array, shift: Shift): Uint8Array {
  let [count, at] = readU32(payload, 0);
  const parts: (Uint8Array | number[])[] = [writeU32(count)];
  for (let i = 0; i < count; i++) {
    const init = skipValType(payload, at) + 1;
    const end = constExprEnd(payload, init);
    parts.push(payload.subarray(at, init), shiftCode(payload, init, end, shift));
    at = end;
  }
  return concatBytes(parts);
}

/** Copies a vector of function indices at `at`, renumbered; returns the copy and its end. */
function shiftIndexVector(payload: Uint8Array, at: number, shift: Shift): [number[], number] {
  let [count, cursor] = readU32(payload, at);
  const out = writeU32(count);
  for (let i = 0; i < count; i++) {
    const [index, next] = readU32(payload, cursor);
    out.push(...writeU32(shift(index)));
    cursor = next;
  }
  return [out, cursor];
}

/** Copies a vector of constant expressions at `at`, renumbered; returns the copy and its end. */
function shiftExprVector(
  payload: Uint8Array,
  at: number,
  shift: Shift,
): [Uint8Array, number] {
  let [count, cursor] = readU32(payload, at);
  const parts: (Uint8Array | number[])[] = [writeU32(count)];
  for (let i = 0; i < count; i++) {
    const end = constExprEnd(payload, cursor);
    parts.push(shiftCode(payload, cursor, end, shift));
    cursor = end;
  }
  return [concatBytes(parts), cursor];
}

function shiftElements(payload: Uint8Array, shift: Shift): Uint8Array {
  let [count, at] = readU32(payload, 0);
  const parts: (Uint8Array | number[])[] = [writeU32(count)];
  for (let i = 0; i < count; i++) {
    const [flags, afterFlags] = readU32(payload, at);
    if (flags > 7) throw new WasmFormatError(`unknown element segment kind ${flags}`);
    let cursor = afterFlags;
    // Bit 1 without bit 0: an explicit table index. Bit 0 clear: an active segment's offset.
    if ((flags & 3) === 2) cursor = skipLeb(payload, cursor);
    if ((flags & 1) === 0) cursor = constExprEnd(payload, cursor);
    // Bits 0 or 1 set: an element kind (0x00) or reference type follows.
    if (flags & 3) cursor = (flags & 4) ? skipValType(payload, cursor) : cursor + 1;
    const [items, end] = flags & 4
      ? shiftExprVector(payload, cursor, shift)
      : shiftIndexVector(payload, cursor, shift);
    parts.push(payload.subarray(at, cursor), items);
    at = end;
  }
  return concatBytes(parts);
}

/** The name of a custom section. */
function customName(payload: Uint8Array): string {
  const [length, at] = readU32(payload, 0);
  return new TextDecoder().decode(payload.subarray(at, at + length));
}

/**
 * Returns `wasm` with one more imported function, `module`.`name` of type
 * `(params) -> (results)` (value type bytes), and its function index.
 */
export function addFunctionImport(
  wasm: Uint8Array,
  module: string,
  name: string,
  params: readonly number[],
  results: readonly number[],
): { bytes: Uint8Array; index: number } {
  const sections = readSections(wasm);
  const payloadOf = (id: number) => sections.find((s) => s.id === id)?.payload;
  const types = payloadOf(SectionId.TYPE);
  const typeIndex = types ? readU32(types, 0)[0] : 0;
  if (types) {
    // Appending a type is safe only when every entry is one plain function type.
    let [count, at] = readU32(types, 0);
    for (let i = 0; i < count; i++) {
      if (types[at++] !== 0x60) {
        throw new WasmFormatError("it declares types beyond function types");
      }
      for (let list = 0; list < 2; list++) {
        const [length, next] = readU32(types, at);
        at = next;
        for (let j = 0; j < length; j++) at = skipValType(types, at);
      }
    }
  }
  placeSection(sections, {
    id: SectionId.TYPE,
    payload: appendToVector(types, [[
      0x60,
      ...writeU32(params.length),
      ...params,
      ...writeU32(results.length),
      ...results,
    ]]),
  });
  const imports = payloadOf(SectionId.IMPORT);
  const index = imports ? importCounts(imports).functions : 0;
  placeSection(sections, {
    id: SectionId.IMPORT,
    payload: appendToVector(imports, [[
      ...writeName(module),
      ...writeName(name),
      0x00,
      ...writeU32(typeIndex),
    ]]),
  });

  const shift: Shift = (i) => (i >= index ? i + 1 : i);
  const rewrite = (id: number, fn: (payload: Uint8Array, shift: Shift) => Uint8Array) => {
    const payload = payloadOf(id);
    if (payload) placeSection(sections, { id, payload: fn(payload, shift) });
  };
  rewrite(SectionId.CODE, shiftCodeSection);
  rewrite(SectionId.EXPORT, shiftExports);
  rewrite(SectionId.GLOBAL, shiftGlobals);
  rewrite(SectionId.ELEMENT, shiftElements);
  rewrite(SectionId.START, (payload) => new Uint8Array(writeU32(shift(readU32(payload, 0)[0]))));
  const tables = payloadOf(SectionId.TABLE);
  if (tables) {
    let [count, at] = readU32(tables, 0);
    for (let i = 0; i < count; i++) {
      // A table with an initialiser expression (0x40) could hold a ref.func: not renumbered.
      if (tables[at] === 0x40) {
        throw new WasmFormatError("it initialises a table with an expression");
      }
      at = skipLimits(tables, skipValType(tables, at));
    }
  }
  // Names for debuggers only, by function index: dropped rather than renumbered.
  const kept = sections.filter((s) =>
    s.id !== SectionId.CUSTOM ||
    !(customName(s.payload) === "name" || customName(s.payload).startsWith("metadata.code."))
  );
  return { bytes: writeSections(kept), index };
}
