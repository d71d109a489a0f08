/**
 * The host file system as the sandbox reaches it: Linux's descriptor-relative calls through
 * libc (Deno's FFI). Every guest path is resolved by the kernel beneath a directory descriptor
 * (`openat2` with `RESOLVE_BENEATH`), so no symlink, `..` or swap made while a call runs can
 * lead out of a volume; a path string of the host is never opened again after a check. A
 * failure throws a {@link WasiError} with the errno the kernel gave, in WASI's numbering.
 * @module
 */

import { Errno, type ErrnoValue, WasiError } from "./errno.ts";

const SYMBOLS = {
  syscall: { parameters: ["i64", "i64", "buffer", "buffer", "usize"], result: "i64" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  pwrite: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  fsync: { parameters: ["i32"], result: "i32" },
  fdatasync: { parameters: ["i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  mkdirat: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  unlinkat: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  renameat: { parameters: ["i32", "buffer", "i32", "buffer"], result: "i32" },
  linkat: { parameters: ["i32", "buffer", "i32", "buffer", "i32"], result: "i32" },
  symlinkat: { parameters: ["buffer", "i32", "buffer"], result: "i32" },
  readlinkat: { parameters: ["i32", "buffer", "buffer", "usize"], result: "isize" },
  utimensat: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  getdents64: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** openat2's number: the same on x86_64 and aarch64 (the generic table). */
const SYS_OPENAT2 = 437;

/** `open` flags; O_DIRECTORY and O_NOFOLLOW differ between x86_64 and aarch64. */
const ARM = Deno.build.arch === "aarch64";
export const O = {
  RDONLY: 0,
  WRONLY: 1,
  RDWR: 2,
  CREAT: 0o100,
  EXCL: 0o200,
  TRUNC: 0o1000,
  APPEND: 0o2000,
  NONBLOCK: 0o4000,
  DIRECTORY: ARM ? 0o40000 : 0o200000,
  NOFOLLOW: ARM ? 0o100000 : 0o400000,
  CLOEXEC: 0o2000000,
  PATH: 0o10000000,
} as const;

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_REMOVEDIR = 0x200;
const AT_SYMLINK_FOLLOW = 0x400;
const AT_EMPTY_PATH = 0x1000;
const RESOLVE_NO_MAGICLINKS = 0x02;
const RESOLVE_BENEATH = 0x08;
const F_GETFL = 3;
const F_SETFL = 4;
const STATX_BASIC_STATS = 0x7ff;
const UTIME_NOW = (1 << 30) - 1;
const UTIME_OMIT = (1 << 30) - 2;

/** Linux errno numbers (x86_64 and aarch64 alike) in WASI's numbering. */
const LINUX_ERRNO: Record<number, ErrnoValue> = {
  1: Errno.PERM,
  2: Errno.NOENT,
  4: Errno.INTR,
  5: Errno.IO,
  6: Errno.NXIO,
  7: Errno.TOOBIG,
  9: Errno.BADF,
  11: Errno.AGAIN,
  12: Errno.NOMEM,
  13: Errno.ACCES,
  14: Errno.FAULT,
  16: Errno.BUSY,
  17: Errno.EXIST,
  18: Errno.XDEV,
  19: Errno.NODEV,
  20: Errno.NOTDIR,
  21: Errno.ISDIR,
  22: Errno.INVAL,
  23: Errno.NFILE,
  24: Errno.MFILE,
  25: Errno.NOTTY,
  26: Errno.TXTBSY,
  27: Errno.FBIG,
  28: Errno.NOSPC,
  29: Errno.SPIPE,
  30: Errno.ROFS,
  31: Errno.MLINK,
  32: Errno.PIPE,
  34: Errno.RANGE,
  36: Errno.NAMETOOLONG,
  38: Errno.NOSYS,
  39: Errno.NOTEMPTY,
  40: Errno.LOOP,
  75: Errno.OVERFLOW,
  95: Errno.NOTSUP,
  122: Errno.DQUOT,
};

/** EXDEV from a resolution: the path would have left the directory. */
const EXDEV = 18;
/** EAGAIN from openat2: a rename or mount raced the resolution; it may be retried. */
const EAGAIN = 11;

let libc: Libc | null | undefined;

function load(): Libc | null {
  if (libc !== undefined) return libc;
  libc = null;
  const arch = Deno.build.arch;
  if (Deno.build.os !== "linux" || (arch !== "x86_64" && arch !== "aarch64")) return libc;
  try {
    libc = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  } catch {
    // No FFI permission, or no glibc.
  }
  return libc;
}

/**
 * Why volumes cannot be served safely on this machine, or undefined when they can: the
 * sandbox needs Linux 5.6's openat2 reached through FFI.
 */
export function whyNoSandbox(): string | undefined {
  const lib = load();
  if (!lib) {
    return Deno.build.os !== "linux"
      ? `volumes need Linux's openat2 to stay inside them, and this is ${Deno.build.os}`
      : "volumes need Linux's openat2 through Deno's FFI (--allow-ffi) and glibc";
  }
  try {
    close(openDirectory("/"));
  } catch (error) {
    if (error instanceof WasiError && error.errno === Errno.NOSYS) {
      return "volumes need openat2, which this Linux kernel (before 5.6) does not have";
    }
    throw error;
  }
  return undefined;
}

function libcOrThrow(): Libc {
  const lib = load();
  if (!lib) throw new WasiError(Errno.NOTSUP);
  return lib;
}

function errno(lib: Libc): number {
  const at = lib.__errno_location();
  return at === null ? 0 : new Deno.UnsafePointerView(at).getInt32();
}

/** The WASI error for the errno of the call that just failed. */
function failure(lib: Libc): WasiError {
  return new WasiError(LINUX_ERRNO[errno(lib)] ?? Errno.IO);
}

/** Throws the errno when `result` is -1; returns it as a number otherwise. */
function check(lib: Libc, result: number | bigint): number {
  const n = Number(result);
  if (n === -1) throw failure(lib);
  return n;
}

const encoder = new TextEncoder();
const cString = (text: string) => encoder.encode(text + "\0");

/**
 * Opens `path` beneath the directory `dirFd` with `flags` (and `mode` when creating); the last
 * component's symlink is followed only with `follow`. Leaving the directory — by `..`, an
 * absolute path or symlink, a magic link — fails with `PERM`.
 */
export function openBeneath(
  dirFd: number,
  path: string,
  flags: number,
  follow: boolean,
  mode = 0o666,
): number {
  const lib = libcOrThrow();
  const how = new BigUint64Array(3);
  how[0] = BigInt(flags | O.CLOEXEC | (follow ? 0 : O.NOFOLLOW));
  how[1] = BigInt(flags & O.CREAT ? mode : 0);
  how[2] = BigInt(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
  const cPath = cString(path);
  for (let attempt = 0;; attempt++) {
    const fd = Number(
      lib.syscall(
        BigInt(SYS_OPENAT2),
        BigInt(dirFd),
        cPath,
        new Uint8Array(how.buffer),
        BigInt(how.byteLength),
      ),
    );
    if (fd >= 0) return fd;
    const code = errno(lib);
    if (code === EXDEV) throw new WasiError(Errno.PERM);
    if (code === EAGAIN && attempt < 8) continue;
    throw new WasiError(LINUX_ERRNO[code] ?? Errno.IO);
  }
}

/** Opens a host directory by its path (a volume's root, chosen by the operator). */
export function openDirectory(hostPath: string): number {
  const lib = libcOrThrow();
  const how = new BigUint64Array([BigInt(O.RDONLY | O.DIRECTORY | O.CLOEXEC), 0n, 0n]);
  return check(
    lib,
    lib.syscall(
      BigInt(SYS_OPENAT2),
      BigInt(AT_FDCWD),
      cString(hostPath),
      new Uint8Array(how.buffer),
      BigInt(how.byteLength),
    ),
  );
}

/** Closes a descriptor. */
export function close(fd: number): void {
  const lib = libcOrThrow();
  check(lib, lib.close(fd));
}

/** Reads into `target`; returns the count, 0 at the end. */
export function read(fd: number, target: Uint8Array): number {
  const lib = libcOrThrow();
  return check(lib, lib.read(fd, target, BigInt(target.length)));
}

/** Writes `source`; returns the count written. */
export function write(fd: number, source: Uint8Array): number {
  const lib = libcOrThrow();
  return check(lib, lib.write(fd, source, BigInt(source.length)));
}

/** Reads into `target` at file offset `offset`. */
export function pread(fd: number, target: Uint8Array, offset: bigint): number {
  const lib = libcOrThrow();
  return check(lib, lib.pread(fd, target, BigInt(target.length), offset));
}

/** Writes `source` at file offset `offset`. */
export function pwrite(fd: number, source: Uint8Array, offset: bigint): number {
  const lib = libcOrThrow();
  return check(lib, lib.pwrite(fd, source, BigInt(source.length), offset));
}

/** Moves the offset (`whence` 0 set, 1 current, 2 end); returns the new one. */
export function seek(fd: number, offset: bigint, whence: number): bigint {
  const lib = libcOrThrow();
  const at = lib.lseek(fd, offset, whence);
  if (Number(at) === -1) throw failure(lib);
  return BigInt(at);
}

/** Sets the file's size. */
export function truncate(fd: number, size: bigint): void {
  const lib = libcOrThrow();
  check(lib, lib.ftruncate(fd, size));
}

/** Flushes the file's data (and its metadata unless `dataOnly`) to the device. */
export function sync(fd: number, dataOnly: boolean): void {
  const lib = libcOrThrow();
  check(lib, dataOnly ? lib.fdatasync(fd) : lib.fsync(fd));
}

/** Turns append mode on or off for the open file. */
export function setAppend(fd: number, append: boolean): void {
  const lib = libcOrThrow();
  const flags = check(lib, lib.fcntl(fd, F_GETFL, 0));
  check(lib, lib.fcntl(fd, F_SETFL, append ? flags | O.APPEND : flags & ~O.APPEND));
}

/** What statx tells of a file, as the host sees it. */
export interface HostStat {
  dev: bigint;
  ino: bigint;
  /** The `S_IF*` bits of the mode (shifted right by 12, the `DT_*` type of the entry). */
  type: number;
  nlink: bigint;
  size: bigint;
  atim: bigint;
  mtim: bigint;
  ctim: bigint;
}

/** glibc's makedev: how `st_dev` is put together from its major and minor numbers. */
function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major >>> 0);
  const mi = BigInt(minor >>> 0);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) |
    (mi & 0xffn);
}

/** Stats the open descriptor `fd` itself (a symlink opened with O_PATH|O_NOFOLLOW too). */
export function stat(fd: number): HostStat {
  const lib = libcOrThrow();
  const buffer = new Uint8Array(256);
  check(
    lib,
    lib.statx(fd, cString(""), AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, buffer),
  );
  const view = new DataView(buffer.buffer);
  const time = (at: number) =>
    view.getBigInt64(at, true) * 1_000_000_000n + BigInt(view.getUint32(at + 8, true));
  return {
    dev: makedev(view.getUint32(136, true), view.getUint32(140, true)),
    ino: view.getBigUint64(32, true),
    type: view.getUint16(28, true) & 0o170000,
    nlink: BigInt(view.getUint32(16, true)),
    size: view.getBigUint64(40, true),
    atim: time(64),
    ctim: time(96),
    mtim: time(112),
  };
}

/** A new time for `setTimes`: nanoseconds, "now", or unchanged (`undefined`). */
export type NewTime = bigint | "now" | undefined;

function timespecs(atim: NewTime, mtim: NewTime): Uint8Array {
  const spec = new DataView(new ArrayBuffer(32));
  const put = (at: number, time: NewTime) => {
    if (typeof time === "bigint") {
      spec.setBigInt64(at, time / 1_000_000_000n, true);
      spec.setBigInt64(at + 8, time % 1_000_000_000n, true);
    } else spec.setBigInt64(at + 8, BigInt(time === "now" ? UTIME_NOW : UTIME_OMIT), true);
  };
  put(0, atim);
  put(16, mtim);
  return new Uint8Array(spec.buffer);
}

/**
 * Sets the access and modification times of what the open descriptor `fd` names, through its
 * /proc link: the very file, whatever its path has become since.
 */
export function setTimes(fd: number, atim: NewTime, mtim: NewTime): void {
  const lib = libcOrThrow();
  check(lib, lib.utimensat(AT_FDCWD, cString(`/proc/self/fd/${fd}`), timespecs(atim, mtim), 0));
}

/** Sets the times of the entry `name` of directory `dirFd` itself (a symlink is not followed). */
export function setTimesAt(dirFd: number, name: string, atim: NewTime, mtim: NewTime): void {
  const lib = libcOrThrow();
  check(lib, lib.utimensat(dirFd, cString(name), timespecs(atim, mtim), AT_SYMLINK_NOFOLLOW));
}

/** Makes directory `name` in `dirFd`. */
export function mkdirAt(dirFd: number, name: string): void {
  const lib = libcOrThrow();
  check(lib, lib.mkdirat(dirFd, cString(name), 0o777));
}

/** Removes the file (or, with `directory`, the empty directory) `name` of `dirFd`. */
export function unlinkAt(dirFd: number, name: string, directory: boolean): void {
  const lib = libcOrThrow();
  check(lib, lib.unlinkat(dirFd, cString(name), directory ? AT_REMOVEDIR : 0));
}

/** Renames `from` in `fromDir` to `to` in `toDir`. */
export function renameAt(fromDir: number, from: string, toDir: number, to: string): void {
  const lib = libcOrThrow();
  check(lib, lib.renameat(fromDir, cString(from), toDir, cString(to)));
}

/** Makes `name` in `dirFd` a symlink to `target` (which is not resolved now). */
export function symlinkAt(target: string, dirFd: number, name: string): void {
  const lib = libcOrThrow();
  check(lib, lib.symlinkat(cString(target), dirFd, cString(name)));
}

/** Makes `name` in `dirFd` a hard link to the entry `from` of `fromDir` (not followed). */
export function linkAt(fromDir: number, from: string, dirFd: number, name: string): void {
  const lib = libcOrThrow();
  check(lib, lib.linkat(fromDir, cString(from), dirFd, cString(name), 0));
}

/** Makes `name` in `dirFd` a hard link to the file the open descriptor `fd` names. */
export function linkOpened(fd: number, dirFd: number, name: string): void {
  const lib = libcOrThrow();
  check(
    lib,
    lib.linkat(AT_FDCWD, cString(`/proc/self/fd/${fd}`), dirFd, cString(name), AT_SYMLINK_FOLLOW),
  );
}

/** The target of the symlink `name` of `dirFd`. */
export function readlinkAt(dirFd: number, name: string): Uint8Array {
  const lib = libcOrThrow();
  const buffer = new Uint8Array(4096);
  const n = check(lib, lib.readlinkat(dirFd, cString(name), buffer, BigInt(buffer.length)));
  return buffer.slice(0, n);
}

/** One entry of a directory listing. */
export interface DirectoryEntry {
  name: string;
  ino: bigint;
  /** Linux's `DT_*` type of the entry. */
  type: number;
}

/** The `DT_*` types of directory entries. */
export const DT = { FIFO: 1, CHR: 2, DIR: 4, BLK: 6, REG: 8, LNK: 10, SOCK: 12 } as const;

const decoder = new TextDecoder();

/** Every entry of the open directory `fd`, `.` and `..` included, from its start. */
export function listDirectory(fd: number): DirectoryEntry[] {
  const lib = libcOrThrow();
  seek(fd, 0n, 0);
  const entries: DirectoryEntry[] = [];
  const buffer = new Uint8Array(32 * 1024);
  const view = new DataView(buffer.buffer);
  for (;;) {
    const n = check(lib, lib.getdents64(fd, buffer, BigInt(buffer.length)));
    if (n === 0) return entries;
    for (let at = 0; at < n;) {
      const length = view.getUint16(at + 16, true);
      const nameStart = at + 19;
      let nameEnd = nameStart;
      while (buffer[nameEnd] !== 0) nameEnd++;
      entries.push({
        ino: view.getBigUint64(at, true),
        type: buffer[at + 18],
        name: decoder.decode(buffer.subarray(nameStart, nameEnd)),
      });
      at += length;
    }
  }
}
