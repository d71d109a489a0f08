/**
 * Per-request limits: their defaults, and the size and duration syntax shared by
 * `modules.toml` and the command line.
 * @module
 */

/** The limits a run is held to. */
export interface Limits {
  /** Wall-clock time a module may run before it is stopped and answered 504. */
  timeoutMs: number;
  /** Largest linear memory a module may grow to. */
  memoryLimitBytes: number;
}

/** Server-wide caps on what crosses HTTP. */
export interface BodyCaps {
  /** Request bodies above this are answered 413. */
  maxBodyBytes: number;
  /** Responses are cut off after this many bytes. */
  maxResponseBytes: number;
}

const MIB = 1024 * 1024;

/** Defaults: 30 s, 128 MiB of memory (as Spin and Fastly), 64 MiB bodies, 1 GiB responses. */
export const DEFAULT_LIMITS: Limits = { timeoutMs: 30_000, memoryLimitBytes: 128 * MIB };
/** Default body caps. */
export const DEFAULT_CAPS: BodyCaps = { maxBodyBytes: 64 * MIB, maxResponseBytes: 1024 * MIB };

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1000,
  kb: 1000,
  kib: 1024,
  m: 1000 ** 2,
  mb: 1000 ** 2,
  mib: MIB,
  g: 1000 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/**
 * Parses a byte size: a number of bytes, or a number with a unit (`128MiB`, `64 MB`, `1GiB`,
 * `512KiB`). Returns undefined when it is not one.
 */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === "number") {
    return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  }
  const match = value.trim().match(/^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/);
  if (!match) return undefined;
  const unit = UNITS[match[2].toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Math.floor(Number(match[1]) * unit);
  return bytes > 0 ? bytes : undefined;
}

/**
 * The longest duration a timer can wait (2^31 - 1 ms, about 24.8 days): a longer one would
 * fire at once. Durations are whole milliseconds, at least one.
 */
const MAX_MS = 2 ** 31 - 1;

/** What a duration must be, for error messages. */
export const SECONDS_RANGE = "a number of seconds from 0.001 to 2147483 (about 24 days)";

/**
 * Parses a duration in seconds (`2.5`) into whole milliseconds; undefined unless it is
 * between one millisecond and {@link MAX_MS}.
 */
export function parseSeconds(value: string | number): number | undefined {
  const seconds = typeof value === "number" ? value : Number(value);
  if (!Number.isFinite(seconds)) return undefined;
  const ms = Math.round(seconds * 1000);
  return ms >= 1 && ms <= MAX_MS ? ms : undefined;
}

/** The largest memory a 32-bit WebAssembly module can have: 65,536 pages of 64 KiB. */
export const MAX_MEMORY_BYTES = 4 * 1024 ** 3;

/** What a memory limit must be, for error messages. */
export const MEMORY_LIMIT_RANGE =
  "a size such as 128MiB, at most 4GiB (a 32-bit WebAssembly memory cannot be larger)";

/** Parses a memory limit: a size (see {@link parseSize}) of at most 4 GiB. */
export function parseMemoryLimit(value: string | number): number | undefined {
  const bytes = parseSize(value);
  return bytes !== undefined && bytes <= MAX_MEMORY_BYTES ? bytes : undefined;
}
