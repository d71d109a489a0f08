/**
 * `fd_*`: operations on open descriptors.
 * @module
 */

import { Errno, errnoOf, WasiError } from "../errno.ts";
import { FdFlags, FstFlags, PREOPENTYPE_DIR, Rights, rightsOf, Whence } from "../constants.ts";
import {
  type Descriptor,
  DirectoryDescriptor,
  entryTypeOf,
  FileDescriptor,
  OutputDescriptor,
} from "../descriptors.ts";
import { syscall, Unwind } from "../syscall.ts";
import type { WasiState } from "../state.ts";
import type { EffectTable } from "../effects.ts";
import { GuestMemory } from "../memory.ts";
import * as hostFs from "../linux_fs.ts";
import type { NewTime } from "../linux_fs.ts";
import { direntHeader, IOVEC_SIZE, type SnapshotLayout, writeFdstat } from "../layout.ts";

/** Which way `transfer` moves bytes. */
const enum Transfer {
  READ,
  WRITE,
  PREAD,
  PWRITE,
}

/** The rights each kind of transfer needs, indexed by {@link Transfer}. */
const TRANSFER_RIGHTS = [
  Rights.FD_READ,
  Rights.FD_WRITE,
  Rights.FD_READ | Rights.FD_SEEK,
  Rights.FD_WRITE | Rights.FD_SEEK,
];

/**
 * Requires the right to seek, or only to tell when the offset stays where it is (`CUR` by 0);
 * the right to seek includes the right to tell.
 */
function requireSeek(d: Descriptor, offset: bigint, whence: number): void {
  if (offset === 0n && whence === Whence.CUR && !d.holds(Rights.FD_SEEK)) {
    d.require(Rights.FD_TELL);
  } else d.require(Rights.FD_SEEK);
}

/** The new access and modification times a `*_set_times` call asks for; `INVAL` if contradictory. */
export function newTimes(atim: bigint, mtim: bigint, flags: number): [NewTime, NewTime] {
  if (
    (flags & FstFlags.ATIM && flags & FstFlags.ATIM_NOW) ||
    (flags & FstFlags.MTIM && flags & FstFlags.MTIM_NOW)
  ) {
    throw new WasiError(Errno.INVAL);
  }
  const pick = (set: number, setNow: number, value: bigint): NewTime =>
    flags & setNow ? "now" : flags & set ? BigInt.asUintN(64, value) : undefined;
  return [
    pick(FstFlags.ATIM, FstFlags.ATIM_NOW, atim),
    pick(FstFlags.MTIM, FstFlags.MTIM_NOW, mtim),
  ];
}

/** What each descriptor call does beyond returning (see effects.ts). */
export const FD_EFFECTS: EffectTable = {
  fd_advise: "pure",
  fd_allocate: "lasting",
  fd_close: "run-local",
  fd_datasync: "lasting",
  fd_sync: "lasting",
  fd_fdstat_get: "pure",
  fd_fdstat_set_flags: "run-local",
  fd_fdstat_set_rights: "run-local",
  fd_filestat_get: "pure",
  fd_filestat_set_size: "lasting",
  fd_filestat_set_times: "lasting",
  fd_pread: "pure",
  fd_pwrite: "lasting",
  // Reading consumes stdin, or moves a file's offset: both belong to the run.
  fd_read: "run-local",
  // stdout and stderr belong to the run; any other descriptor is a file being changed.
  fd_write: (state: WasiState, fd: number) =>
    state.fds[fd] instanceof OutputDescriptor ? "run-local" : "lasting",
  fd_prestat_get: "pure",
  fd_prestat_dir_name: "pure",
  fd_readdir: "pure",
  fd_renumber: "run-local",
  fd_seek: "run-local",
  fd_tell: "pure",
};

/** The descriptor calls for `host`, with `layout`'s records. */
export function fdCalls(host: WasiState, layout: SnapshotLayout) {
  const memory = host.memory;

  /**
   * Moves bytes between a descriptor and the guest's iovecs, stopping at the first short
   * transfer; returns the total. Positioned modes continue from `offset`. No closure or view
   * is allocated: descriptors get all of guest memory with a position and a length.
   */
  const transfer = (
    d: Descriptor,
    iovs: number,
    count: number,
    mode: Transfer,
    offset: bigint,
  ): number => {
    const bytes = memory.bytes;
    let total = 0;
    for (let i = 0; i < count; i++) {
      const base = iovs + i * IOVEC_SIZE;
      const at = memory.u32(base);
      const length = memory.u32(base + 4);
      if (length === 0) continue;
      memory.check(at, length);
      if (mode === Transfer.READ || mode === Transfer.PREAD) memory.wrote(at, length);
      const done = mode === Transfer.READ
        ? d.read(bytes, at, length)
        : mode === Transfer.WRITE
        ? d.write(bytes, at, length)
        : mode === Transfer.PREAD
        ? d.pread(bytes, at, length, offset + BigInt(total))
        : d.pwrite(bytes, at, length, offset + BigInt(total));
      total += done;
      if (done < length) break;
    }
    return total;
  };

  /** The body of fd_read, fd_write, fd_pread and fd_pwrite, without the generic wrapper. */
  const io = (
    fd: number,
    iovs: number,
    count: number,
    resultPtr: number,
    mode: Transfer,
    offset: bigint,
  ) => {
    try {
      const d = host.descriptor(fd);
      d.require(TRANSFER_RIGHTS[mode]);
      memory.setU32(resultPtr, transfer(d, iovs, count, mode, offset));
      return Errno.SUCCESS;
    } catch (error) {
      if (error instanceof Unwind) throw error;
      return errnoOf(error);
    }
  };

  return {
    fd_advise: syscall((fd: number, _offset: bigint, _len: bigint, advice: number) => {
      const d = host.descriptor(fd);
      d.require(Rights.FD_ADVISE);
      if (advice > 5) throw new WasiError(Errno.INVAL);
      d.advise();
    }),
    fd_allocate: syscall((fd: number, offset: bigint, len: bigint) => {
      const d = host.descriptor(fd);
      d.require(Rights.FD_ALLOCATE);
      d.allocate(BigInt.asUintN(64, offset) + BigInt.asUintN(64, len));
    }),
    fd_close: syscall((fd: number) => {
      host.descriptor(fd).close();
      host.fds[fd] = undefined;
    }),
    fd_datasync: syscall((fd: number) => {
      const d = host.descriptor(fd);
      d.require(Rights.FD_DATASYNC);
      if (d instanceof FileDescriptor) d.syncData();
      else d.sync();
    }),
    fd_sync: syscall((fd: number) => {
      const d = host.descriptor(fd);
      d.require(Rights.FD_SYNC);
      d.sync();
    }),
    fd_fdstat_get: syscall((fd: number, ptr: number) => {
      writeFdstat(memory, ptr, host.descriptor(fd));
    }),
    fd_fdstat_set_flags: syscall((fd: number, flags: number) => {
      const d = host.descriptor(fd);
      d.require(Rights.FD_FDSTAT_SET_FLAGS);
      const kept = flags & (FdFlags.APPEND | FdFlags.NONBLOCK);
      // A host file appends by the kernel's own flag.
      if (d instanceof FileDescriptor && (kept ^ d.fdflags) & FdFlags.APPEND) {
        d.setAppend((kept & FdFlags.APPEND) !== 0);
      }
      d.fdflags = kept;
    }),
    fd_fdstat_set_rights: syscall((fd: number, base: bigint, inheriting: bigint) => {
      const d = host.descriptor(fd);
      // A bit beyond the defined ones is a right nobody holds: asking for it adds a right.
      const undefinedBits = (BigInt.asUintN(64, base) | BigInt.asUintN(64, inheriting)) >> 30n;
      const newBase = rightsOf(base);
      const newInheriting = rightsOf(inheriting);
      if (
        undefinedBits !== 0n || (newBase & ~d.rightsBase) !== 0 ||
        (newInheriting & ~d.rightsInheriting) !== 0
      ) {
        throw new WasiError(Errno.NOTCAPABLE);
      }
      d.rightsBase = newBase;
      d.rightsInheriting = newInheriting;
    }),
    fd_filestat_get: syscall((fd: number, ptr: number) => {
      const d = host.descriptor(fd);
      d.require(Rights.FD_FILESTAT_GET);
      layout.writeFilestat(memory, ptr, d.stat());
    }),
    fd_filestat_set_size: syscall((fd: number, size: bigint) => {
      const d = host.descriptor(fd);
      d.require(Rights.FD_FILESTAT_SET_SIZE);
      d.setSize(BigInt.asUintN(64, size));
    }),
    fd_filestat_set_times: syscall((fd: number, atim: bigint, mtim: bigint, flags: number) => {
      // Contradictory flags are refused before anything else.
      const [a, m] = newTimes(atim, mtim, flags);
      const d = host.descriptor(fd);
      d.require(Rights.FD_FILESTAT_SET_TIMES);
      if (d instanceof DirectoryDescriptor) d.requireWritable();
      else if (!(d instanceof FileDescriptor) || !d.writable) throw new WasiError(Errno.BADF);
      hostFs.setTimes(d.fd, a, m);
    }),
    fd_pread: (fd: number, iovs: number, count: number, offset: bigint, resultPtr: number) =>
      io(fd, iovs, count, resultPtr, Transfer.PREAD, BigInt.asUintN(64, offset)),
    fd_pwrite: (fd: number, iovs: number, count: number, offset: bigint, resultPtr: number) =>
      io(fd, iovs, count, resultPtr, Transfer.PWRITE, BigInt.asUintN(64, offset)),
    fd_read: (fd: number, iovs: number, count: number, resultPtr: number) =>
      io(fd, iovs, count, resultPtr, Transfer.READ, 0n),
    fd_write: (fd: number, iovs: number, count: number, resultPtr: number) =>
      io(fd, iovs, count, resultPtr, Transfer.WRITE, 0n),
    fd_prestat_get: syscall((fd: number, ptr: number) => {
      const d = host.descriptor(fd);
      if (!(d instanceof DirectoryDescriptor) || d.preopenName === undefined) {
        throw new WasiError(Errno.BADF);
      }
      memory.setU32(ptr, PREOPENTYPE_DIR);
      memory.setU32(ptr + 4, GuestMemory.encode(d.preopenName).length);
    }),
    fd_prestat_dir_name: syscall((fd: number, ptr: number, len: number) => {
      const d = host.descriptor(fd);
      if (!(d instanceof DirectoryDescriptor) || d.preopenName === undefined) {
        throw new WasiError(Errno.BADF);
      }
      const name = GuestMemory.encode(d.preopenName);
      if (len < name.length) throw new WasiError(Errno.NAMETOOLONG);
      memory.write(ptr, name);
    }),
    fd_readdir: syscall(
      (fd: number, bufPtr: number, bufLen: number, cookie: bigint, resultPtr: number) => {
        const d = host.directory(fd);
        d.require(Rights.FD_READDIR);
        const start = Number(BigInt.asUintN(64, cookie));
        if (start === 0 || d.listing === undefined) d.listing = listDirectory(d.fd);
        const out = memory.writable(bufPtr, bufLen);
        let used = 0;
        for (let i = start; i < d.listing.length && used < bufLen; i++) {
          const entry = d.listing[i];
          const name = GuestMemory.encode(entry.name);
          const header = direntHeader(BigInt(i + 1), entry.ino, name.length, entry.filetype);
          // Entries that do not fit are cut at the buffer's end, as the spec asks.
          const headerPart = Math.min(header.length, bufLen - used);
          out.set(header.subarray(0, headerPart), used);
          used += headerPart;
          const namePart = Math.min(name.length, bufLen - used);
          out.set(name.subarray(0, namePart), used);
          used += namePart;
        }
        memory.setU32(resultPtr, used);
      },
    ),
    fd_renumber: syscall((from: number, to: number) => {
      const source = host.descriptor(from);
      host.descriptor(to).close();
      host.fds[to] = source;
      host.fds[from] = undefined;
    }),
    fd_seek: syscall((fd: number, offset: bigint, whence: number, resultPtr: number) => {
      const d = host.descriptor(fd);
      const mode = layout.whence(whence);
      if (mode === undefined) throw new WasiError(Errno.INVAL);
      requireSeek(d, offset, mode);
      memory.setU64(resultPtr, d.seek(offset, mode));
    }),
    fd_tell: syscall((fd: number, resultPtr: number) => {
      const d = host.descriptor(fd);
      requireSeek(d, 0n, Whence.CUR);
      memory.setU64(resultPtr, d.seek(0n, Whence.CUR));
    }),
  };
}

/** The entries of a directory as `fd_readdir` reports them, `.` and `..` first. */
function listDirectory(fd: number) {
  const entries = hostFs.listDirectory(fd).map((entry) => ({
    name: entry.name,
    ino: entry.ino,
    filetype: entryTypeOf(entry.type),
  }));
  const dot = (name: string) => (name === "." ? 0 : name === ".." ? 1 : 2);
  // A stable sort: the kernel's order otherwise.
  return entries.sort((a, b) => dot(a.name) - dot(b.name));
}
