/**
 * Preparing a module to run on the server's own thread: a fuel counter is charged at the top
 * of every function and loop and traps below zero, so a guest that runs too long stops by
 * itself; a flag
 * records a refused `memory.grow`, so that a run that hit the (lower) memory cap there can be
 * redone elsewhere; and every mutable global is exported, so that an instance can be put back
 * to its just-instantiated state and serve the next request. The rewrite happens once, at
 * load time.
 * @module
 */

import {
  appendToVector,
  concatBytes,
  Effect,
  importCounts,
  placeSection,
  readInstruction,
  readSections,
  readU32,
  SectionId,
  skipConstExpr,
  skipLeb,
  skipValType,
  writeName,
  writeS32,
  writeSections,
  writeU32,
} from "./binary.ts";
import { FUEL_EXPORT, GROW_REFUSED_EXPORT, STATE_GLOBAL_PREFIX } from "./contract.ts";

/** A metered module, and what an instance of it can have restored. */
export interface MeteredModule {
  bytes: Uint8Array;
  /** Indices of the mutable globals exported as `STATE_GLOBAL_PREFIX` + index. */
  stateGlobals: number[];
  /**
   * Why an instance cannot be reset and reused (tables or segments it can change, a v128
   * global JavaScript cannot read); undefined when it can.
   */
  notReusable?: string;
  /**
   * It has a start function: its state after instantiation is the start function's doing,
   * the same for every instance only when that made no host call (the runner watches).
   */
  hasStart: boolean;
}

/** The defined globals: how many, which are mutable (by index), and whether one is a v128. */
function definedGlobals(payload: Uint8Array, first: number) {
  let [count, at] = readU32(payload, 0);
  const mutable: number[] = [];
  let mutableV128 = false;
  for (let i = 0; i < count; i++) {
    const type = payload[at];
    at = skipValType(payload, at);
    if (payload[at++] === 1) {
      if (type === 0x7b) mutableV128 = true;
      else mutable.push(first + i);
    }
    at = skipConstExpr(payload, at);
  }
  return { count, mutable, mutableV128 };
}

/**
 * What runs once the counter is below zero: a trap, or (with `refill`, the index of the host
 * function that answers) the counter set to what the host gives, and a trap when that is
 * still below zero. A trap cannot be caught by the guest, unlike an exception from the host.
 */
function whenEmpty(fuel: number, refill: number | undefined): number[] {
  if (refill === undefined) return [0x00]; // unreachable
  const index = writeU32(fuel);
  // deno-fmt-ignore
  return [
    0x10, ...writeU32(refill), // call $refill
    0x24, ...index, //            global.set $fuel
    0x23, ...index, //            global.get $fuel
    0x41, 0x00, //                i32.const 0
    0x48, //                      i32.lt_s
    0x04, 0x40, 0x00, 0x0b, //    if unreachable end
  ];
}

/**
 * The fuel check put at the top of each function and loop: take `cost` units, and run `empty`
 * once the counter is below zero. The cost is the number of instructions in the body that
 * follows, so fuel tracks work done, not only iterations (a deep recursion has no loop).
 */
function fuelCheck(fuel: number, cost: number, empty: number[]): number[] {
  const index = writeU32(fuel);
  // deno-fmt-ignore
  return [
    0x23, ...index, //           global.get $fuel
    0x41, ...writeS32(cost), //  i32.const cost
    ...spend(index, empty),
  ];
}

/** With fuel and an amount on the stack: store their difference; below zero, run `empty`. */
function spend(index: number[], empty: number[]): number[] {
  // deno-fmt-ignore
  return [
    0x6b, //                     i32.sub
    0x24, ...index, //           global.set $fuel
    0x23, ...index, //           global.get $fuel
    0x41, 0x00, //               i32.const 0
    0x48, //                     i32.lt_s
    0x04, 0x40, ...empty, 0x0b, // if … end
  ];
}

/**
 * What follows each `memory.grow`: its result goes through a scratch global, and -1 (refused)
 * sets the refused flag. Globals, not locals, so that no function signature changes.
 */
function growWatch(scratch: number, refused: number): number[] {
  // deno-fmt-ignore
  return [
    0x24, ...writeU32(scratch), //  global.set $scratch
    0x23, ...writeU32(scratch), //  global.get $scratch
    0x41, 0x7f, //                  i32.const -1
    0x46, //                        i32.eq
    0x04, 0x40, //                  if
    0x41, 0x01, //                  i32.const 1
    0x24, ...writeU32(refused), //  global.set $refused
    0x0b, //                        end
    0x23, ...writeU32(scratch), //  global.get $scratch
  ];
}

/**
 * What goes before each bulk memory instruction: charge fuel for its length (on top of the
 * stack, kept there), at one unit per two bytes, about what a plain instruction costs.
 */
function bulkCharge(fuel: number, scratch: number, empty: number[]): number[] {
  const index = writeU32(fuel);
  // deno-fmt-ignore
  return [
    0x24, ...writeU32(scratch), //  global.set $scratch (the length)
    0x23, ...index, //              global.get $fuel
    0x23, ...writeU32(scratch), //  global.get $scratch
    0x41, 0x01, //                  i32.const 1
    0x76, //                        i32.shr_u
    ...spend(index, empty),
    0x23, ...writeU32(scratch), //  global.get $scratch
  ];
}

/**
 * Instruction counts of a function body: of the whole, and of each loop in order; whether it
 * can change its instance's tables or segments, and whether it makes a call outside every
 * loop (a call inside a loop comes after that loop's own check in the same pass).
 */
function bodyCosts(payload: Uint8Array, start: number, end: number) {
  const loops: number[] = [];
  // Open blocks, each the index in `loops` of a loop or -1, with the count at its start.
  const open: { loop: number; from: number }[] = [];
  let count = 0;
  let depth = 0;
  let changesInstance = false;
  let callsOutsideLoops = false;
  for (let cursor = start; cursor < end; count++) {
    const [next, effect] = readInstruction(payload, cursor);
    cursor = next;
    if (effect === Effect.LOOP) {
      open.push({ loop: loops.length, from: count });
      loops.push(0);
      depth++;
    } else if (effect === Effect.BLOCK) open.push({ loop: -1, from: count });
    else if (effect === Effect.END) {
      const closed = open.pop();
      if (closed && closed.loop !== -1) {
        loops[closed.loop] = count - closed.from;
        depth--;
      }
    } else if (effect === Effect.INSTANCE_STATE) changesInstance = true;
    else if (effect === Effect.CALL && depth === 0) callsOutsideLoops = true;
  }
  return { total: count, loops, changesInstance, callsOutsideLoops };
}

/** Fuel charged at least, per check. */
const MIN_COST = 1;

/**
 * Fuel a call of an imported (host) function costs on top, in the trapping mode: about a
 * microsecond of guest work, so that a loop of cheap host calls runs out as a loop of guest
 * code would. The bytes a call moves are charged by the host.
 */
export const HOST_CALL_COST = 1000;

/** Takes `cost` from the fuel (the next check traps when it is spent). */
function charge(fuel: number, cost: number): number[] {
  const index = writeU32(fuel);
  // deno-fmt-ignore
  return [
    0x23, ...index, //           global.get $fuel
    0x41, ...writeS32(cost), //  i32.const cost
    0x6b, //                     i32.sub
    0x24, ...index, //           global.set $fuel
  ];
}

/**
 * Rewrites the code section: a fuel check at the top of every function and loop, `watch`
 * after every `memory.grow`, and `bulk` before every bulk memory instruction. Says whether
 * the code can change tables or segments.
 */
function meterCode(
  payload: Uint8Array,
  fuel: number,
  watch: number[],
  bulk: number[],
  empty: number[],
  allEntries: boolean,
  hostCall: { imported: number; charge: number[] } | undefined,
) {
  let [count, at] = readU32(payload, 0);
  const parts: (Uint8Array | number[])[] = [writeU32(count)];
  let changesInstance = false;
  for (let f = 0; f < count; f++) {
    const [size, bodyStart] = readU32(payload, at);
    const end = bodyStart + size;
    let [locals, cursor] = readU32(payload, bodyStart);
    for (let i = 0; i < locals; i++) cursor = skipValType(payload, skipLeb(payload, cursor));
    const costs = bodyCosts(payload, cursor, end);
    changesInstance ||= costs.changesInstance;
    const body: (Uint8Array | number[])[] = [
      payload.subarray(bodyStart, cursor),
      allEntries || costs.callsOutsideLoops
        ? fuelCheck(fuel, Math.max(MIN_COST, costs.total), empty)
        : [],
    ];
    let copied = cursor;
    let loop = 0;
    while (cursor < end) {
      const [next, effect] = readInstruction(payload, cursor);
      if (effect === Effect.BULK_MEMORY) {
        body.push(payload.subarray(copied, cursor), bulk);
        copied = cursor;
      } else if (
        hostCall && effect === Effect.CALL && payload[cursor] === 0x10 &&
        readU32(payload, cursor + 1)[0] < hostCall.imported
      ) {
        // A call of the host: charged here, in the guest, rather than in each host function.
        body.push(payload.subarray(copied, cursor), hostCall.charge);
        copied = cursor;
      }
      cursor = next;
      if (effect === Effect.LOOP || effect === Effect.MEMORY_GROW) {
        const inserted = effect === Effect.LOOP
          ? fuelCheck(fuel, Math.max(MIN_COST, costs.loops[loop++]), empty)
          : watch;
        body.push(payload.subarray(copied, cursor), inserted);
        copied = cursor;
      }
    }
    if (cursor !== end) throw new Error(`function ${f} does not end where its size says`);
    body.push(payload.subarray(copied, end));
    const bytes = concatBytes(body);
    parts.push(writeU32(bytes.length), bytes);
    at = end;
  }
  return { code: concatBytes(parts), changesInstance };
}

/** Whether an export section's payload exports a memory. */
function exportsAMemory(payload: Uint8Array | undefined): boolean {
  if (!payload) return false;
  let [count, at] = readU32(payload, 0);
  for (let i = 0; i < count; i++) {
    const [length, next] = readU32(payload, at);
    at = next + length;
    if (payload[at] === 0x02) return true;
    at = readU32(payload, at + 1)[1];
  }
  return false;
}

/**
 * Returns `wasm` with fuel metering (the counter starting at `initialFuel`) and its mutable
 * globals exported. Out of fuel, the guest traps; or, with `refill` (the index of an imported
 * function `() -> i32`), it asks that function for more, and traps when it answers below zero.
 *
 * With `refill`, the counter only has to come round often enough, not to count all work: a
 * function is charged on entry only when it makes a call outside its loops. A function whose
 * calls all sit in loops passes a loop's check before each of them, and one without calls
 * runs straight through its body between two checks; so no path runs long without a check.
 * Throws when the module uses an instruction the reader does not know.
 */
export function meter(wasm: Uint8Array, initialFuel = 0, refill?: number): MeteredModule {
  const sections = readSections(wasm);
  const payloadOf = (id: number) => sections.find((s) => s.id === id)?.payload;
  const imports = payloadOf(SectionId.IMPORT);
  const first = imports ? importCounts(imports).globals : 0;
  const globalSection = payloadOf(SectionId.GLOBAL);
  const globals = globalSection
    ? definedGlobals(globalSection, first)
    : { count: 0, mutable: [], mutableV128: false };
  const fuel = first + globals.count;

  const codeSection = payloadOf(SectionId.CODE);
  const metered = codeSection
    ? meterCode(
      codeSection,
      fuel,
      growWatch(fuel + 1, fuel + 2),
      bulkCharge(fuel, fuel + 1, whenEmpty(fuel, refill)),
      whenEmpty(fuel, refill),
      refill === undefined,
      refill === undefined && imports
        ? { imported: importCounts(imports).functions, charge: charge(fuel, HOST_CALL_COST) }
        : undefined,
    )
    : { code: undefined, changesInstance: false };
  if (metered.code) placeSection(sections, { id: SectionId.CODE, payload: metered.code });

  // Three (global (mut i32)): fuel (the runner also sets the budget before each call), the
  // grow scratch, and the grow-refused flag.
  const i32Zero = [0x7f, 0x01, 0x41, 0x00, 0x0b];
  // The fuel starts full, for a start function that runs while the module is instantiated.
  const i32Fuel = [0x7f, 0x01, 0x41, ...writeS32(initialFuel), 0x0b];
  placeSection(sections, {
    id: SectionId.GLOBAL,
    payload: appendToVector(globalSection, [i32Fuel, i32Zero, i32Zero]),
  });
  const exports = [
    [...writeName(FUEL_EXPORT), 0x03, ...writeU32(fuel)],
    [...writeName(GROW_REFUSED_EXPORT), 0x03, ...writeU32(fuel + 2)],
    ...globals.mutable.map((g) => [...writeName(STATE_GLOBAL_PREFIX + g), 0x03, ...writeU32(g)]),
  ];
  placeSection(sections, {
    id: SectionId.EXPORT,
    payload: appendToVector(payloadOf(SectionId.EXPORT), exports),
  });

  const memorySection = payloadOf(SectionId.MEMORY);
  const memories = memorySection ? readU32(memorySection, 0)[0] : 0;
  const notReusable = metered.changesInstance
    ? "it can change its tables or drop segments"
    : memories > 1
    // Only the exported memory can be put back from outside: another one would keep its bytes.
    ? "it has more than one memory"
    : memories === 1 && !exportsAMemory(payloadOf(SectionId.EXPORT))
    ? "its memory is not exported: it could not be put back"
    : globals.mutableV128
    ? "it has a mutable v128 global"
    : first > 0
    ? "it imports globals"
    : undefined;
  return {
    bytes: writeSections(sections),
    stateGlobals: globals.mutable,
    notReusable,
    hasStart: payloadOf(SectionId.START) !== undefined,
  };
}
