/**
 * Reading and writing the WebAssembly binary format at load time: LEB128 numbers, sections,
 * and the immediates of every instruction, so that rewriters can walk code without a parser
 * dependency.
 * @module
 */

/** A malformed or unsupported binary; the message says what and where. */
export class WasmFormatError extends Error {
  override name = "WasmFormatError";
}

/** Reads an unsigned LEB128 number of up to 32 bits. */
export function readU32(bytes: Uint8Array, at: number): [value: number, next: number] {
  let value = 0;
  let shift = 0;
  for (;;) {
    const byte = bytes[at++];
    if (byte === undefined) throw new WasmFormatError("truncated LEB128");
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [value, at];
    shift += 7;
    if (shift > 35) throw new WasmFormatError("LEB128 too long");
  }
}

/** Skips a LEB128 number of any width (signed or not); returns the offset after it. */
export function skipLeb(bytes: Uint8Array, at: number): number {
  for (let i = 0; i < 10; i++) {
    const byte = bytes[at++];
    if (byte === undefined) throw new WasmFormatError("truncated LEB128");
    if ((byte & 0x80) === 0) return at;
  }
  throw new WasmFormatError("LEB128 too long");
}

/** Encodes an unsigned LEB128 number. */
export function writeU32(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
  return out;
}

/** Encodes a signed LEB128 number (an `i32.const` immediate). */
export function writeS32(value: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = value & 0x7f;
    value >>= 7;
    const done = (value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

/** Encodes a name (length-prefixed UTF-8). */
export function writeName(name: string): number[] {
  const bytes = new TextEncoder().encode(name);
  return [...writeU32(bytes.length), ...bytes];
}

/** One section of a module: its id and payload (a view into the original bytes). */
export interface Section {
  id: number;
  payload: Uint8Array;
}

/** Section ids. */
export const SectionId = {
  CUSTOM: 0,
  TYPE: 1,
  IMPORT: 2,
  FUNCTION: 3,
  TABLE: 4,
  MEMORY: 5,
  GLOBAL: 6,
  EXPORT: 7,
  START: 8,
  ELEMENT: 9,
  CODE: 10,
  DATA: 11,
  DATA_COUNT: 12,
  TAG: 13,
} as const;

/** Where each known section must appear relative to the others. */
const SECTION_ORDER = [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 11, 6];

/** The rank of a known section in the required order (tag sits between memory and global). */
export function sectionRank(id: number): number {
  return SECTION_ORDER[id] ?? -1;
}

/** Splits a module into its sections; throws on a bad header or a truncated section. */
export function readSections(wasm: Uint8Array): Section[] {
  if (
    wasm.length < 8 || wasm[0] !== 0 || wasm[1] !== 0x61 || wasm[2] !== 0x73 || wasm[3] !== 0x6d
  ) {
    throw new WasmFormatError("not a WebAssembly binary");
  }
  if (wasm[4] !== 1 || wasm[5] !== 0 || wasm[6] !== 0 || wasm[7] !== 0) {
    throw new WasmFormatError("not a core module (version 1)");
  }
  const sections: Section[] = [];
  let at = 8;
  while (at < wasm.length) {
    const id = wasm[at];
    const [size, start] = readU32(wasm, at + 1);
    if (start + size > wasm.length) throw new WasmFormatError(`section ${id} is truncated`);
    sections.push({ id, payload: wasm.subarray(start, start + size) });
    at = start + size;
  }
  return sections;
}

/** Joins sections back into a module. */
export function writeSections(sections: readonly Section[]): Uint8Array {
  const parts: (Uint8Array | number[])[] = [[0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]];
  for (const { id, payload } of sections) parts.push([id, ...writeU32(payload.length)], payload);
  return concatBytes(parts);
}

/** Skips a value type, including the typed references of the GC proposal. */
export function skipValType(bytes: Uint8Array, at: number): number {
  const byte = bytes[at];
  // (ref ht) and (ref null ht) carry a heap type, a signed LEB.
  if (byte === 0x63 || byte === 0x64) return skipLeb(bytes, at + 1);
  return at + 1;
}

/** Skips a block type: empty, one value type, or a type index (signed LEB). */
function skipBlockType(bytes: Uint8Array, at: number): number {
  const byte = bytes[at];
  if (byte === 0x40) return at + 1;
  if (byte >= 0x6f && byte <= 0x7f || byte === 0x63 || byte === 0x64) {
    return skipValType(bytes, at);
  }
  return skipLeb(bytes, at);
}

/** Skips a memarg: alignment (bit 6 says a memory index follows), then offset. */
function skipMemarg(bytes: Uint8Array, at: number): number {
  const [align, next] = readU32(bytes, at);
  at = next;
  if (align & 0x40) at = skipLeb(bytes, at);
  return skipLeb(bytes, at);
}

/** Instruction classes a rewriter cares about. */
export const enum Effect {
  NONE,
  /** `loop`: a place where a guest can run forever. */
  LOOP,
  /** Changes a table or drops a segment: instance state beyond memory and globals. */
  INSTANCE_STATE,
  /** `end`. */
  END,
  /** `memory.grow`: the guest asks for more memory, and may be refused. */
  MEMORY_GROW,
  /** `block` or `if`: opens a nesting level that an `end` closes. */
  BLOCK,
  /** `memory.copy`, `memory.fill`, `memory.init`: work in proportion to the length on top. */
  BULK_MEMORY,
  /** A call of any kind: direct, indirect, or a tail call. */
  CALL,
}

/** Opcodes whose only immediate is one LEB128 number. */
const ONE_LEB = new Set([
  0x0c, // br
  0x0d, // br_if
  0x20, // local.get
  0x21, // local.set
  0x22, // local.tee
  0x23, // global.get
  0x24, // global.set
  0x25, // table.get
  0x3f, // memory.size
  0x41, // i32.const
  0x42, // i64.const
  0xd0, // ref.null (heap type)
  0xd2, // ref.func
  0xd4, // br_on_null
  0xd6, // br_on_non_null
]);

/**
 * Skips one instruction starting at `at` (its opcode) and says what kind it is. Throws on an
 * opcode this reader does not know (exception handling, GC, threads beyond atomics), so a
 * rewriter never emits code it did not understand.
 */
export function readInstruction(bytes: Uint8Array, at: number): [next: number, effect: Effect] {
  const op = bytes[at++];
  if (op === undefined) throw new WasmFormatError("code ends inside a function");
  if (op === 0x0b) return [at, Effect.END];
  if (op === 0x03) return [skipBlockType(bytes, at), Effect.LOOP];
  if (op === 0x02 || op === 0x04) return [skipBlockType(bytes, at), Effect.BLOCK];
  if (op <= 0x01 || op === 0x05 || op === 0x0f || op === 0x1a || op === 0x1b) {
    return [at, Effect.NONE];
  }
  if (ONE_LEB.has(op)) return [skipLeb(bytes, at), Effect.NONE];
  if (op === 0x26) return [skipLeb(bytes, at), Effect.INSTANCE_STATE]; // table.set
  if (op === 0x40) return [skipLeb(bytes, at), Effect.MEMORY_GROW];
  if (op === 0x10 || op === 0x12) return [skipLeb(bytes, at), Effect.CALL]; // (return_)call
  // call_indirect, return_call_indirect
  if (op === 0x11 || op === 0x13) return [skipLeb(bytes, skipLeb(bytes, at)), Effect.CALL];
  if (op === 0x0e) { // br_table
    let [count, next] = readU32(bytes, at);
    for (let i = 0; i <= count; i++) next = skipLeb(bytes, next);
    return [next, Effect.NONE];
  }
  if (op === 0x1c) { // select t*
    let [count, next] = readU32(bytes, at);
    for (let i = 0; i < count; i++) next = skipValType(bytes, next);
    return [next, Effect.NONE];
  }
  if (op >= 0x28 && op <= 0x3e) return [skipMemarg(bytes, at), Effect.NONE];
  if (op === 0x43) return [at + 4, Effect.NONE];
  if (op === 0x44) return [at + 8, Effect.NONE];
  if (op >= 0x45 && op <= 0xc4) return [at, Effect.NONE];
  if (op === 0xd1 || op === 0xd3) return [at, Effect.NONE];
  if (op === 0xfc) return readMisc(bytes, at);
  if (op === 0xfd) return readSimd(bytes, at);
  if (op === 0xfe) return readAtomic(bytes, at);
  throw new WasmFormatError(`unsupported opcode 0x${op.toString(16)} at byte ${at - 1}`);
}

/** 0xFC: saturating truncation, bulk memory and table instructions. */
function readMisc(bytes: Uint8Array, at: number): [number, Effect] {
  const [sub, next] = readU32(bytes, at);
  if (sub <= 7) return [next, Effect.NONE];
  switch (sub) {
    case 8: // memory.init data mem
    case 10: // memory.copy mem mem
      return [skipLeb(bytes, skipLeb(bytes, next)), Effect.BULK_MEMORY];
    case 11: // memory.fill mem
      return [skipLeb(bytes, next), Effect.BULK_MEMORY];
    case 9: // data.drop
    case 13: // elem.drop
    case 15: // table.grow
    case 17: // table.fill
      return [skipLeb(bytes, next), Effect.INSTANCE_STATE];
    case 16: // table.size
      return [skipLeb(bytes, next), Effect.NONE];
    case 12: // table.init elem table
    case 14: // table.copy table table
      return [skipLeb(bytes, skipLeb(bytes, next)), Effect.INSTANCE_STATE];
  }
  throw new WasmFormatError(`unsupported instruction 0xfc ${sub}`);
}

/** 0xFD: fixed-width SIMD. */
function readSimd(bytes: Uint8Array, at: number): [number, Effect] {
  const [sub, next] = readU32(bytes, at);
  if (sub <= 11 || sub === 92 || sub === 93) return [skipMemarg(bytes, next), Effect.NONE];
  if (sub === 12 || sub === 13) return [next + 16, Effect.NONE]; // v128.const, i8x16.shuffle
  if (sub >= 21 && sub <= 34) return [next + 1, Effect.NONE]; // lane index
  if (sub >= 84 && sub <= 91) return [skipMemarg(bytes, next) + 1, Effect.NONE]; // load/store lane
  if (sub <= 0x113) return [next, Effect.NONE];
  throw new WasmFormatError(`unsupported instruction 0xfd ${sub}`);
}

/** 0xFE: atomics (a memarg each, except `atomic.fence`). */
function readAtomic(bytes: Uint8Array, at: number): [number, Effect] {
  const [sub, next] = readU32(bytes, at);
  if (sub === 3) return [next + 1, Effect.NONE];
  if (sub <= 0x4e) return [skipMemarg(bytes, next), Effect.NONE];
  throw new WasmFormatError(`unsupported instruction 0xfe ${sub}`);
}

/** Skips a constant expression (a global's initializer), through its `end`. */
export function skipConstExpr(bytes: Uint8Array, at: number): number {
  for (;;) {
    const [next, effect] = readInstruction(bytes, at);
    at = next;
    if (effect === Effect.END) return at;
  }
}

/** Skips table or memory limits: flags, min, and max when flag bit 0 is set. */
export function skipLimits(bytes: Uint8Array, at: number): number {
  const flags = bytes[at++];
  at = skipLeb(bytes, at);
  return flags & 0x01 ? skipLeb(bytes, at) : at;
}

/** How many imports of each kind a module has: each kind's index space starts with them. */
export interface ImportCounts {
  functions: number;
  tables: number;
  memories: number;
  globals: number;
}

/** One import of a module, as the binary declares it. */
export interface ImportEntry {
  module: string;
  name: string;
  kind: "function" | "table" | "memory" | "global" | "tag";
  /** A memory's limit flags (0x01 a maximum, 0x02 shared, 0x04 64-bit) and maximum, in pages. */
  memory?: { flags: number; maxPages: number | undefined };
}

const IMPORT_KINDS = ["function", "table", "memory", "global", "tag"] as const;

/** The imports a module declares, read from its bytes. Throws on a malformed binary. */
export function importsOf(wasm: Uint8Array): ImportEntry[] {
  const payload = readSections(wasm).find((s) => s.id === SectionId.IMPORT)?.payload;
  return payload ? importEntries(payload) : [];
}

/** Counts the imports of each kind in an import section's payload. */
export function importCounts(payload: Uint8Array): ImportCounts {
  const counts = { functions: 0, tables: 0, memories: 0, globals: 0 };
  for (const entry of importEntries(payload)) {
    if (entry.kind === "function") counts.functions++;
    else if (entry.kind === "table") counts.tables++;
    else if (entry.kind === "memory") counts.memories++;
    else if (entry.kind === "global") counts.globals++;
  }
  return counts;
}

/** The entries of an import section's payload. */
function importEntries(payload: Uint8Array): ImportEntry[] {
  const decoder = new TextDecoder();
  let [count, at] = readU32(payload, 0);
  const entries: ImportEntry[] = [];
  for (let i = 0; i < count; i++) {
    const names: string[] = [];
    for (let n = 0; n < 2; n++) {
      const [length, next] = readU32(payload, at);
      names.push(decoder.decode(payload.subarray(next, next + length)));
      at = next + length;
    }
    const kind = payload[at++];
    const limits = at;
    if (kind === 0) at = skipLeb(payload, at);
    else if (kind === 1) at = skipLimits(payload, skipValType(payload, at));
    else if (kind === 2) at = skipLimits(payload, at);
    else if (kind === 3) at = skipValType(payload, at) + 1;
    else if (kind === 4) at = skipLeb(payload, at + 1);
    else throw new WasmFormatError(`unknown import kind ${kind}`);
    const entry: ImportEntry = { module: names[0], name: names[1], kind: IMPORT_KINDS[kind] };
    if (kind === 2) {
      const flags = payload[limits];
      const max = flags & 0x01 ? readU32(payload, skipLeb(payload, limits + 1))[0] : undefined;
      entry.memory = { flags, maxPages: max };
    }
    entries.push(entry);
  }
  return entries;
}

/** Concatenates byte arrays. */
export function concatBytes(parts: readonly (Uint8Array | number[])[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Appends entries to a vector section (count first), or starts one. */
export function appendToVector(
  payload: Uint8Array | undefined,
  entries: readonly number[][],
): Uint8Array {
  const [count, at] = payload ? readU32(payload, 0) : [0, 0];
  return concatBytes([
    writeU32(count + entries.length),
    payload ? payload.subarray(at) : [],
    ...entries,
  ]);
}

/** Puts `section` in place of the one with its id, or where the required order puts it. */
export function placeSection(sections: Section[], section: Section): void {
  const existing = sections.findIndex((s) => s.id === section.id);
  if (existing !== -1) {
    sections[existing] = section;
    return;
  }
  const rank = sectionRank(section.id);
  const after = sections.findIndex((s) => s.id !== SectionId.CUSTOM && sectionRank(s.id) > rank);
  sections.splice(after === -1 ? sections.length : after, 0, section);
}
