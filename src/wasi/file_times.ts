/**
 * File times with nanosecond precision. Deno's file APIs round times to milliseconds, which
 * guests can see (set `mtim - 100`, read it back); on Linux, libc's `lstat`/`stat` and
 * `utimensat` are reached through FFI instead. Elsewhere, or without FFI permission, the
 * millisecond Deno APIs are used.
 * @module
 */

/** Access, modification and status-change times in nanoseconds. */
export interface FileTimes {
  atim: bigint;
  mtim: bigint;
  ctim: bigint;
}

/** A new time for `setFileTimes`: nanoseconds, "now", or unchanged (`undefined`). */
export type NewTime = bigint | "now" | undefined;

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const UTIME_NOW = (1 << 30) - 1;
const UTIME_OMIT = (1 << 30) - 2;
/** `struct stat` is 144 bytes with `st_atim` at 72 on both x86_64 and aarch64 Linux. */
const STAT_SIZE = 144;
const ATIM_OFFSET = 72;

const symbols = {
  stat: { parameters: ["buffer", "buffer"], result: "i32" },
  lstat: { parameters: ["buffer", "buffer"], result: "i32" },
  utimensat: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
} as const;

let libc: Deno.DynamicLibrary<typeof symbols>["symbols"] | null | undefined;

function loadLibc() {
  if (libc !== undefined) return libc;
  libc = null;
  const arch = Deno.build.arch;
  if (Deno.build.os !== "linux" || (arch !== "x86_64" && arch !== "aarch64")) return libc;
  try {
    libc = Deno.dlopen("libc.so.6", symbols).symbols;
  } catch {
    // No FFI permission or no glibc: the millisecond fallback is used.
  }
  return libc;
}

const encoder = new TextEncoder();
const cPath = (path: string) => encoder.encode(path + "\0");

function fromTimespec(view: DataView, at: number): bigint {
  return view.getBigInt64(at, true) * 1_000_000_000n + view.getBigInt64(at + 8, true);
}

/** The times of `path`, following a final symlink when `follow`. Throws like `Deno.statSync`. */
export function fileTimes(path: string, follow: boolean): FileTimes {
  const lib = loadLibc();
  if (lib) {
    const buffer = new Uint8Array(STAT_SIZE);
    if ((follow ? lib.stat : lib.lstat)(cPath(path), buffer) === 0) {
      const view = new DataView(buffer.buffer);
      return {
        atim: fromTimespec(view, ATIM_OFFSET),
        mtim: fromTimespec(view, ATIM_OFFSET + 16),
        ctim: fromTimespec(view, ATIM_OFFSET + 32),
      };
    }
  }
  const info = follow ? Deno.statSync(path) : Deno.lstatSync(path);
  const ns = (date: Date | null) => (date ? BigInt(date.getTime()) * 1_000_000n : 0n);
  return { atim: ns(info.atime), mtim: ns(info.mtime), ctim: ns(info.ctime ?? info.mtime) };
}

/** Sets the access and modification times of `path` (the final symlink itself unless `follow`). */
export function setFileTimes(path: string, atim: NewTime, mtim: NewTime, follow: boolean): void {
  const lib = loadLibc();
  if (lib) {
    const spec = new DataView(new ArrayBuffer(32));
    const put = (at: number, time: NewTime) => {
      if (typeof time === "bigint") {
        spec.setBigInt64(at, time / 1_000_000_000n, true);
        spec.setBigInt64(at + 8, time % 1_000_000_000n, true);
      } else spec.setBigInt64(at + 8, BigInt(time === "now" ? UTIME_NOW : UTIME_OMIT), true);
    };
    put(0, atim);
    put(16, mtim);
    const flags = follow ? 0 : AT_SYMLINK_NOFOLLOW;
    if (lib.utimensat(AT_FDCWD, cPath(path), new Uint8Array(spec.buffer), flags) === 0) return;
  }
  const current = fileTimes(path, true);
  const toDate = (time: NewTime, old: bigint) =>
    new Date(Number((time === "now" ? BigInt(Date.now()) * 1_000_000n : time ?? old) / 1_000_000n));
  Deno.utimeSync(path, toDate(atim, current.atim), toDate(mtim, current.mtim));
}
