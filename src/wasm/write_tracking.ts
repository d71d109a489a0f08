/**
 * Recording which chunks (1 KiB pieces, see CHUNK_BITS) of its memory a guest wrote, so that
 * an instance kept between runs is put back by copying those chunks alone rather than all of
 * its memory. The module is rewritten once at load: every store first sets the byte of its
 * chunk in a second, exported memory (the chunk map), and every bulk write marks its whole
 * range. What the host writes into guest memory is marked with {@link markChunks}.
 * @module
 */

import {
  appendToVector,
  concatBytes,
  importsOf,
  placeSection,
  readInstruction,
  readSections,
  readU32,
  SectionId,
  skipValType,
  writeName,
  writeS32,
  writeSections,
  writeU32,
} from "./binary.ts";
import { CHUNK_BITS, CHUNK_MAP_EXPORT, CHUNK_MAP_IMPORT, chunkMapPages } from "./contract.ts";

/** What kind of memory write an instruction is, if any. */
type Write =
  | { kind: "store"; type: number; offset: number }
  | { kind: "bulk" }
  | { kind: "untracked" }
  | undefined;

/** Value types stored by the plain store opcodes 0x36 (i32.store) to 0x3e (i64.store32). */
const STORED_TYPES = [0x7f, 0x7e, 0x7d, 0x7c, 0x7f, 0x7f, 0x7e, 0x7e, 0x7e];

/** The offset of the memarg at `at` (alignment, an optional memory index, then the offset). */
function memargOffset(bytes: Uint8Array, at: number): number {
  const [align, next] = readU32(bytes, at);
  at = next;
  if (align & 0x40) at = readU32(bytes, at)[1];
  return readU32(bytes, at)[0];
}

/** Says whether the instruction at `at` writes memory, and how. */
function writeAt(bytes: Uint8Array, at: number): Write {
  const op = bytes[at];
  if (op >= 0x36 && op <= 0x3e) {
    return { kind: "store", type: STORED_TYPES[op - 0x36], offset: memargOffset(bytes, at + 1) };
  }
  if (op !== 0xfc && op !== 0xfd && op !== 0xfe) return undefined;
  const [sub, next] = readU32(bytes, at + 1);
  if (op === 0xfc) return sub === 8 || sub === 10 || sub === 11 ? { kind: "bulk" } : undefined;
  if (op === 0xfd) {
    if (sub === 11) return { kind: "store", type: 0x7b, offset: memargOffset(bytes, next) };
    // Lane stores.
    return sub >= 88 && sub <= 91 ? { kind: "untracked" } : undefined;
  }
  // Atomic stores, read-modify-writes and compare-exchanges.
  return sub >= 0x17 && sub <= 0x4e ? { kind: "untracked" } : undefined;
}

/** The number of parameters of each function type; a string when a type is not a plain one. */
function paramCounts(payload: Uint8Array | undefined): number[] | string {
  if (!payload) return [];
  let [count, at] = readU32(payload, 0);
  const counts: number[] = [];
  for (let i = 0; i < count; i++) {
    if (payload[at++] !== 0x60) return "it declares types beyond function types";
    for (let list = 0; list < 2; list++) {
      const [length, next] = readU32(payload, at);
      at = next;
      for (let j = 0; j < length; j++) at = skipValType(payload, at);
      if (list === 0) counts.push(length);
    }
  }
  return counts;
}

/** The type index of each defined function. */
function functionTypes(payload: Uint8Array | undefined): number[] {
  if (!payload) return [];
  let [count, at] = readU32(payload, 0);
  const types: number[] = [];
  for (let i = 0; i < count; i++) {
    const [type, next] = readU32(payload, at);
    types.push(type);
    at = next;
  }
  return types;
}

/** Local indices of a function's scratch locals: three i32s, then one per other stored type. */
interface Scratch {
  a: number[];
  b: number[];
  c: number[];
  /** The local a stored value of each type goes through. */
  value: Map<number, number[]>;
}

/** `i32.const CHUNK_BITS; i32.shr_u`: an address on the stack becomes its chunk's index. */
const TO_CHUNK = [0x41, CHUNK_BITS, 0x76];

/** Marks the chunk of a store's address (under its value), leaving both as they were. */
function storeMark(scratch: Scratch, type: number, offset: number): number[] {
  const { a } = scratch;
  const v = scratch.value.get(type)!;
  // deno-fmt-ignore
  return [
    0x21, ...v, //                          local.set $value
    0x22, ...a, //                          local.tee $address
    ...(offset === 0 ? [] : [0x41, ...writeS32(offset | 0), 0x6a]), // + offset
    ...TO_CHUNK,
    0x41, 0x01, //                          i32.const 1
    0x3a, 0x40, 0x01, 0x00, //              i32.store8 (memory 1) offset=0
    0x20, ...a, 0x20, ...v, //              local.get $address, local.get $value
  ];
}

/**
 * Marks every chunk from a bulk write's destination through its length (the three i32
 * operands of `memory.fill`, `memory.copy` and `memory.init`), leaving them as they were.
 */
function bulkMark({ a, b, c }: Scratch): number[] {
  // deno-fmt-ignore
  return [
    0x21, ...c, 0x21, ...b, 0x22, ...a, //  length, second operand, destination
    ...TO_CHUNK, //                         first chunk
    0x41, 0x01, //                          i32.const 1
    0x20, ...a, 0x20, ...c, 0x6a, //        destination + length
    0x41, ...writeS32(2 ** CHUNK_BITS - 1), 0x6a, ...TO_CHUNK, // rounded up to a chunk
    0x20, ...a, ...TO_CHUNK, 0x6b, //       - first chunk = chunks touched
    0xfc, 0x0b, 0x01, //                    memory.fill (memory 1)
    0x20, ...a, 0x20, ...b, 0x20, ...c,
  ];
}

/** Rewrites one function body (from its local declarations to its end), or says why not. */
function trackBody(
  payload: Uint8Array,
  start: number,
  end: number,
  params: number,
): Uint8Array | string | undefined {
  let [groups, cursor] = readU32(payload, start);
  const groupsStart = cursor;
  let locals = params;
  for (let i = 0; i < groups; i++) {
    const [n, next] = readU32(payload, cursor);
    locals += n;
    cursor = skipValType(payload, next);
  }
  const codeStart = cursor;
  const stored = new Set<number>();
  let bulk = false;
  while (cursor < end) {
    const write = writeAt(payload, cursor);
    if (write?.kind === "untracked") return "it uses atomic or lane stores";
    if (write?.kind === "store") stored.add(write.type);
    if (write?.kind === "bulk") bulk = true;
    cursor = readInstruction(payload, cursor)[0];
  }
  if (stored.size === 0 && !bulk) return undefined;

  // Three i32s (the address and two operands), then one local per other stored type.
  const newGroups: number[][] = [[3, 0x7f]];
  const scratch: Scratch = {
    a: writeU32(locals),
    b: writeU32(locals + 1),
    c: writeU32(locals + 2),
    value: new Map([[0x7f, writeU32(locals + 1)]]),
  };
  let next = locals + 3;
  for (const type of stored) {
    if (type === 0x7f) continue;
    newGroups.push([1, type]);
    scratch.value.set(type, writeU32(next++));
  }
  const body: (Uint8Array | number[])[] = [
    writeU32(groups + newGroups.length),
    payload.subarray(groupsStart, codeStart),
    ...newGroups,
  ];
  let copied = codeStart;
  for (cursor = codeStart; cursor < end;) {
    const write = writeAt(payload, cursor);
    if (write !== undefined) {
      const mark = write.kind === "store"
        ? storeMark(scratch, write.type, write.offset)
        : bulkMark(scratch);
      body.push(payload.subarray(copied, cursor), mark);
      copied = cursor;
    }
    cursor = readInstruction(payload, cursor)[0];
  }
  body.push(payload.subarray(copied, end));
  return concatBytes(body);
}

/** Rewrites the code section; a string says why the module cannot be tracked. */
function trackCode(payload: Uint8Array, params: readonly number[]): Uint8Array | string {
  let [count, at] = readU32(payload, 0);
  const parts: (Uint8Array | number[])[] = [writeU32(count)];
  for (let f = 0; f < count; f++) {
    const [size, bodyStart] = readU32(payload, at);
    const end = bodyStart + size;
    if (params[f] === undefined) return `function ${f} has no type`;
    const tracked = trackBody(payload, bodyStart, end, params[f]);
    if (typeof tracked === "string") return tracked;
    const body = tracked ?? payload.subarray(bodyStart, end);
    parts.push(writeU32(body.length), body);
    at = end;
  }
  return concatBytes(parts);
}

/** Where {@link trackWrites} may find the memory to track, and how large the map may be. */
export interface TrackingOptions {
  /**
   * Size the chunk map for the most memory the module may have (up to 64 pages of map for
   * 4 GiB, reserved rather than resident until written), rather than refuse a memory that may
   * outgrow one page of map (64 MiB).
   */
  mapForAnySize?: boolean;
  /**
   * Track a module that imports its memory (as a component's core modules share one): it
   * then imports the chunk map too, as `CHUNK_MAP_IMPORT`, to be given its owner's map.
   */
  importedMemory?: boolean;
}

/**
 * Returns `wasm` with its writes recorded in a chunk map exported as {@link CHUNK_MAP_EXPORT}
 * (or imported, see {@link TrackingOptions}), or a string saying why it cannot be: its memory
 * is imported, shared, 64-bit, one of several, or may outgrow the chunk map, or its code uses
 * atomic or lane stores.
 */
export function trackWrites(wasm: Uint8Array, options: TrackingOptions = {}): Uint8Array | string {
  const sections = readSections(wasm);
  const payloadOf = (id: number) => sections.find((s) => s.id === id)?.payload;
  const imports = payloadOf(SectionId.IMPORT);
  const importedMemories = imports
    ? importsOf(wasm).filter((i) => i.kind === "memory").map((i) => i.memory!)
    : [];
  const memories = payloadOf(SectionId.MEMORY);
  const [definedCount, memoryAt] = memories ? readU32(memories, 0) : [0, 0];
  if (importedMemories.length + definedCount === 0) return "it has no memory";
  if (importedMemories.length + definedCount !== 1) return "it has several memories";
  if (importedMemories.length > 0 && !options.importedMemory) return "it imports its memory";
  let flags: number, maxPages: number | undefined;
  if (importedMemories.length > 0) ({ flags, maxPages } = importedMemories[0]);
  else {
    flags = memories![memoryAt];
    maxPages = flags & 0x01
      ? readU32(memories!, readU32(memories!, memoryAt + 1)[1])[0]
      : undefined;
  }
  if (flags & 0x06) return "its memory is shared or 64-bit";
  const mapPages = chunkMapPages(maxPages);
  if (mapPages > 1 && !options.mapForAnySize) {
    return "its memory may grow past what the chunk map covers";
  }

  const params = paramCounts(payloadOf(SectionId.TYPE));
  if (typeof params === "string") return params;
  const types = functionTypes(payloadOf(SectionId.FUNCTION));
  const code = payloadOf(SectionId.CODE);
  if (code) {
    const tracked = trackCode(code, types.map((t) => params[t]));
    if (typeof tracked === "string") return tracked;
    placeSection(sections, { id: SectionId.CODE, payload: tracked });
  }
  // The chunk map, memory 1 either way: an imported memory is index 0, a defined one follows
  // every imported one (there is none).
  if (importedMemories.length > 0) {
    const [module, name] = CHUNK_MAP_IMPORT;
    placeSection(sections, {
      id: SectionId.IMPORT,
      // Any size: the owner's map covers the memory's most pages.
      payload: appendToVector(imports, [[
        ...writeName(module),
        ...writeName(name),
        0x02,
        0x00,
        0x01,
      ]]),
    });
    return writeSections(sections);
  }
  const pages = writeU32(mapPages);
  placeSection(sections, {
    id: SectionId.MEMORY,
    payload: appendToVector(memories, [[0x01, ...pages, ...pages]]),
  });
  placeSection(sections, {
    id: SectionId.EXPORT,
    payload: appendToVector(payloadOf(SectionId.EXPORT), [
      [...writeName(CHUNK_MAP_EXPORT), 0x02, 0x01],
    ]),
  });
  return writeSections(sections);
}
