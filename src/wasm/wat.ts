/**
 * The WebAssembly text format: telling text from binary, and compiling text to binary with
 * wabt, which is loaded only the first time a text module is met.
 * @module
 */

/** Features a hello-world WAT may use beyond the MVP; wabt's defaults lack some. */
const WAT_FEATURES = {
  bulk_memory: true,
  mutable_globals: true,
  sat_float_to_int: true,
  sign_extension: true,
  multi_value: true,
  reference_types: true,
  simd: true,
  tail_call: true,
};

/** The part of wabt's API this module uses. */
interface Wabt {
  parseWat(name: string, text: string, features?: object): {
    resolveNames(): void;
    validate(features?: object): void;
    toBinary(options: object): { buffer: Uint8Array };
    destroy(): void;
  };
}

let wabtModule: Promise<Wabt> | undefined;

/** Compiles WebAssembly text to binary; throws wabt's message when the text is invalid. */
export async function watToWasm(path: string, text: string): Promise<Uint8Array> {
  wabtModule ??= import("wabt").then((m) => (m.default as () => Promise<Wabt>)());
  const wabt = await wabtModule;
  const parsed = wabt.parseWat(path, text, WAT_FEATURES);
  try {
    parsed.resolveNames();
    parsed.validate(WAT_FEATURES);
    return new Uint8Array(parsed.toBinary({}).buffer);
  } finally {
    parsed.destroy();
  }
}

/** True when `bytes` start with the binary format's magic number, `\0asm`. */
export function hasWasmMagic(bytes: Uint8Array): boolean {
  return bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Whether a module file is WebAssembly text: a `.wat` file, or one without the binary magic
 * whose content is UTF-8 text that opens with `(` (after blanks and `;;` comments). Anything
 * else is taken as binary, so that its bytes are never quoted back as text.
 */
export function isWatText(path: string, bytes: Uint8Array): boolean {
  if (path.endsWith(".wat")) return true;
  if (hasWasmMagic(bytes)) return false;
  let text: string;
  try {
    text = strictUtf8.decode(bytes.subarray(0, 4096));
  } catch {
    return false;
  }
  const start = text.replace(/^(\s|;;[^\n]*\n?)*/, "");
  return start.startsWith("(");
}
