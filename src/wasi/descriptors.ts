/**
 * The objects behind guest file descriptors: standard streams, host files and directories.
 * Each kind answers the operations it supports; the rest fail with the errno wasmtime gives.
 * Host files and directories are held by their own host descriptors (see linux_fs.ts), never
 * by a path that could be swapped.
 * @module
 */

import { Errno, WasiError } from "./errno.ts";
import * as host from "./linux_fs.ts";
import {
  DIRECTORY_RIGHTS,
  FILE_RIGHTS,
  FILE_WRITE_RIGHTS,
  FileType,
  Rights,
  STREAM_RIGHTS,
  Whence,
} from "./constants.ts";

/** The fields of a WASI `filestat`, as the host sees them. */
export interface Filestat {
  dev: bigint;
  ino: bigint;
  filetype: number;
  nlink: bigint;
  size: bigint;
  atim: bigint;
  mtim: bigint;
  ctim: bigint;
}

/**
 * Where guest output (stdout, stderr) goes: `length` bytes of `memory` (all of guest memory,
 * so no view is allocated per call) from `at`. The sink copies what it keeps.
 */
export interface OutputSink {
  write(memory: Uint8Array, at: number, length: number): void;
  /** A terminal: the guest sees a character device (and libc buffers by line). */
  readonly terminal?: boolean;
}

/** Where guest input (stdin) comes from: fills up to `length` bytes at `at`; 0 at the end. */
export interface InputSource {
  read(memory: Uint8Array, at: number, length: number): number;
  /** A terminal: the guest sees a character device. */
  readonly terminal?: boolean;
  /** Bytes that can be read now without waiting. */
  available(): number;
}

/**
 * Base of every descriptor: unsupported operations fail with `BADF` or `SPIPE` as in wasmtime.
 *
 * Rights come in two layers. `grantable` is what the descriptor's kind and open mode allow at
 * all (a directory is never read as bytes, a file opened read-only never written); an operation
 * outside it fails with the operation's own errno, as in wasmtime. `rightsBase` is what the
 * guest holds now, within that: what it asked for at `path_open`, narrowed by what the directory
 * passes on and by `fd_fdstat_set_rights`; an operation outside it is `NOTCAPABLE`.
 */
export abstract class Descriptor {
  abstract readonly filetype: number;
  /** The rights this kind of descriptor, opened this way, can ever hold. */
  readonly grantable: number;
  rightsBase: number;
  rightsInheriting: number;
  fdflags = 0;

  constructor(grantable: number, rightsBase = grantable, rightsInheriting = 0) {
    this.grantable = grantable;
    this.rightsBase = rightsBase & grantable;
    this.rightsInheriting = rightsInheriting;
  }

  /**
   * Fails with `NOTCAPABLE` when the descriptor could hold every right in `rights` but does not
   * (dropped, not asked for, not inherited). Rights its kind or mode never allow are left to
   * the operation, which answers with its own errno (`BADF`, `SPIPE`, `ISDIR`).
   */
  require(rights: number): void {
    if ((this.rightsBase & rights) === rights) return;
    if ((this.grantable & rights) === rights) throw new WasiError(Errno.NOTCAPABLE);
  }

  /** True when the descriptor holds every right in `rights` now. */
  holds(rights: number): boolean {
    return (this.rightsBase & rights) === rights;
  }

  /** Reads up to `length` bytes into `memory` at `at`; returns the count, 0 at the end. */
  read(_memory: Uint8Array, _at: number, _length: number): number {
    throw new WasiError(Errno.BADF);
  }
  /** Writes `length` bytes of `memory` from `at`; returns the count written. */
  write(_memory: Uint8Array, _at: number, _length: number): number {
    throw new WasiError(Errno.BADF);
  }
  /** Like `read`, at a file offset, leaving the current offset alone. */
  pread(_memory: Uint8Array, _at: number, _length: number, _offset: bigint): number {
    throw new WasiError(Errno.SPIPE);
  }
  /** Like `write`, at a file offset, leaving the current offset alone. */
  pwrite(_memory: Uint8Array, _at: number, _length: number, _offset: bigint): number {
    throw new WasiError(Errno.SPIPE);
  }
  seek(_offset: bigint, _whence: number): bigint {
    throw new WasiError(Errno.SPIPE);
  }
  stat(): Filestat {
    return {
      dev: 0n,
      ino: 0n,
      filetype: this.filetype,
      nlink: 1n,
      size: 0n,
      atim: 0n,
      mtim: 0n,
      ctim: 0n,
    };
  }
  setSize(_size: bigint): void {
    throw new WasiError(Errno.BADF);
  }
  /** Takes advice on how the guest will use the data (`fd_advise`): ignored where it applies. */
  advise(): void {
    throw new WasiError(Errno.BADF);
  }
  /** Makes sure the file has room up to `end` bytes (`fd_allocate`). */
  allocate(_end: bigint): void {
    throw new WasiError(Errno.BADF);
  }
  /** Flushes what was written through this descriptor to storage. */
  sync(): void {
    throw new WasiError(Errno.BADF);
  }
  close(): void {}
}

/**
 * The file type of a standard stream, as wasmtime reports it: a character device for a
 * terminal, unknown for a pipe or a buffer (so that libc buffers output fully, not by line).
 */
function streamType(terminal: boolean | undefined): number {
  return terminal ? FileType.CHARACTER_DEVICE : FileType.UNKNOWN;
}

/** Rights of stdin and of stdout/stderr. */
const INPUT_RIGHTS = STREAM_RIGHTS & ~Rights.FD_WRITE;
const OUTPUT_RIGHTS = STREAM_RIGHTS & ~Rights.FD_READ;

/** The guest's stdin: bytes from an {@link InputSource}. */
export class InputDescriptor extends Descriptor {
  readonly filetype: number;
  constructor(readonly source: InputSource) {
    super(INPUT_RIGHTS);
    this.filetype = streamType(source.terminal);
  }
  override read(memory: Uint8Array, at: number, length: number): number {
    return this.source.read(memory, at, length);
  }
}

/** The guest's stdout or stderr: bytes to an {@link OutputSink}. */
export class OutputDescriptor extends Descriptor {
  readonly filetype: number;
  constructor(readonly sink: OutputSink) {
    super(OUTPUT_RIGHTS);
    this.filetype = streamType(sink.terminal);
  }
  override write(memory: Uint8Array, at: number, length: number): number {
    this.sink.write(memory, at, length);
    return length;
  }
}

/**
 * A directory entry's `DT_*` type as WASI numbers it (a FIFO is of no type WASI has). A file's
 * `S_IF*` mode bits shifted right by 12 are the same numbers.
 */
export function entryTypeOf(type: number): number {
  switch (type) {
    case host.DT.REG:
      return FileType.REGULAR_FILE;
    case host.DT.DIR:
      return FileType.DIRECTORY;
    case host.DT.LNK:
      return FileType.SYMBOLIC_LINK;
    case host.DT.BLK:
      return FileType.BLOCK_DEVICE;
    case host.DT.CHR:
      return FileType.CHARACTER_DEVICE;
    case host.DT.SOCK:
      return FileType.SOCKET_STREAM;
    default:
      return FileType.UNKNOWN;
  }
}

/** The WASI {@link Filestat} of what the open host descriptor `fd` names. */
export function filestatOf(fd: number): Filestat {
  const stat = host.stat(fd);
  return {
    dev: stat.dev,
    ino: stat.ino,
    filetype: entryTypeOf(stat.type >> 12),
    nlink: stat.nlink,
    size: stat.size,
    atim: stat.atim,
    mtim: stat.mtim,
    ctim: stat.ctim,
  };
}

/** True when the open host descriptor `fd` is a directory. */
export function isDirectory(fd: number): boolean {
  return host.stat(fd).type >> 12 === host.DT.DIR;
}

/** A regular host file opened through `path_open`, held by its host descriptor. */
export class FileDescriptor extends Descriptor {
  readonly filetype = FileType.REGULAR_FILE;
  constructor(
    /** The host descriptor, opened with the access this file was granted. */
    readonly fd: number,
    /** Opened for reading on the host. */
    readonly readable: boolean,
    /** Opened for writing on the host. */
    readonly writable: boolean,
    fdflags: number,
    /** The rights the guest holds (what it asked for, within what the directory passes on). */
    rightsBase: number = FILE_RIGHTS,
    rightsInheriting = 0,
  ) {
    let grantable = FILE_RIGHTS;
    if (!readable) grantable &= ~Rights.FD_READ;
    if (!writable) grantable &= ~FILE_WRITE_RIGHTS;
    super(grantable, rightsBase, rightsInheriting);
    this.fdflags = fdflags;
  }
  override read(memory: Uint8Array, at: number, length: number): number {
    if (!this.readable) throw new WasiError(Errno.BADF);
    return host.read(this.fd, memory.subarray(at, at + length));
  }
  override write(memory: Uint8Array, at: number, length: number): number {
    if (!this.writable) throw new WasiError(Errno.BADF);
    const data = memory.subarray(at, at + length);
    let written = 0;
    while (written < data.length) written += host.write(this.fd, data.subarray(written));
    return written;
  }
  override pread(memory: Uint8Array, at: number, length: number, offset: bigint): number {
    if (!this.readable) throw new WasiError(Errno.BADF);
    return host.pread(this.fd, memory.subarray(at, at + length), offset);
  }
  override pwrite(memory: Uint8Array, at: number, length: number, offset: bigint): number {
    if (!this.writable) throw new WasiError(Errno.BADF);
    const data = memory.subarray(at, at + length);
    let written = 0;
    while (written < data.length) {
      written += host.pwrite(this.fd, data.subarray(written), offset + BigInt(written));
    }
    return written;
  }
  override seek(offset: bigint, whence: number): bigint {
    // WASI numbers whence as Linux does (SET 0, CUR 1, END 2).
    if (whence !== Whence.SET && whence !== Whence.CUR && whence !== Whence.END) {
      throw new WasiError(Errno.INVAL);
    }
    return host.seek(this.fd, offset, whence);
  }
  override stat(): Filestat {
    return filestatOf(this.fd);
  }
  override advise(): void {}
  override allocate(end: bigint): void {
    if (!this.writable) throw new WasiError(Errno.BADF);
    if (this.stat().size < end) this.setSize(end);
  }
  override setSize(size: bigint): void {
    if (!this.writable) throw new WasiError(Errno.BADF);
    host.truncate(this.fd, size);
  }
  override sync(): void {
    host.sync(this.fd, false);
  }
  /** Flushes the data only. */
  syncData(): void {
    host.sync(this.fd, true);
  }
  /** Turns append mode on or off (`fd_fdstat_set_flags`). */
  setAppend(append: boolean): void {
    host.setAppend(this.fd, append);
  }
  override close(): void {
    host.close(this.fd);
  }
}

/** A host directory: a preopened volume or one opened beneath it, held by its descriptor. */
export class DirectoryDescriptor extends Descriptor {
  readonly filetype = FileType.DIRECTORY;
  /** Entries read by the last `fd_readdir` that started at cookie 0, reused by later cookies. */
  listing: { name: string; ino: bigint; filetype: number }[] | undefined;
  #fd: number | undefined;
  #hostPath: string | undefined;

  constructor(
    /**
     * Its host descriptor, or for a preopen the host path it is opened from when first used
     * (most runs of a module never touch their volumes).
     */
    from: number | string,
    /** The guest path of a preopen (what `fd_prestat_dir_name` reports); undefined otherwise. */
    readonly preopenName?: string,
    /** Beneath a read-only volume: nothing may be created, changed or removed. */
    readonly readOnly = false,
    /** The rights the guest holds on it (every directory right for a preopen). */
    rightsBase: number = DIRECTORY_RIGHTS,
    /** What it passes on to what is opened beneath it (everything for a preopen). */
    rightsInheriting: number = DIRECTORY_RIGHTS | FILE_RIGHTS,
  ) {
    super(DIRECTORY_RIGHTS, rightsBase, rightsInheriting);
    if (typeof from === "number") this.#fd = from;
    else this.#hostPath = from;
  }

  /** The host descriptor every path beneath this directory is resolved from. */
  get fd(): number {
    return this.#fd ??= host.openDirectory(this.#hostPath!);
  }
  override stat(): Filestat {
    return filestatOf(this.fd);
  }
  /** Nothing to flush: a guest changes a directory only through path calls, which are done. */
  override sync(): void {}
  override advise(): void {}
  /** Fails with `PERM` when this directory is beneath a read-only volume. */
  requireWritable(): void {
    if (this.readOnly) throw new WasiError(Errno.PERM);
  }
  override read(): number {
    throw new WasiError(Errno.ISDIR);
  }
  override write(): number {
    throw new WasiError(Errno.ISDIR);
  }
  override pread(): number {
    throw new WasiError(Errno.ISDIR);
  }
  override pwrite(): number {
    throw new WasiError(Errno.ISDIR);
  }
  /** Seeking a directory is `BADF` in wasmtime (POSIX would answer 0). */
  override seek(): bigint {
    throw new WasiError(Errno.BADF);
  }
  override close(): void {
    if (this.#fd !== undefined) host.close(this.#fd);
    this.#fd = undefined;
  }
}
