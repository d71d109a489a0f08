/**
 * The objects behind guest file descriptors: standard streams, host files and directories.
 * Each kind answers the operations it supports; the rest fail with the errno wasmtime gives.
 * @module
 */

import { Errno, WasiError } from "./errno.ts";
import { type FileTimes, fileTimes } from "./file_times.ts";
import {
  DIRECTORY_RIGHTS,
  FdFlags,
  FILE_RIGHTS,
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

/** Base of every descriptor: unsupported operations fail with `BADF` or `SPIPE` as in wasmtime. */
export abstract class Descriptor {
  abstract readonly filetype: number;
  rightsBase: bigint;
  rightsInheriting: bigint;
  fdflags = 0;

  constructor(rightsBase: bigint, rightsInheriting = 0n) {
    this.rightsBase = rightsBase;
    this.rightsInheriting = rightsInheriting;
  }

  /** Fails with `NOTCAPABLE` unless the descriptor holds every right in `rights`. */
  require(rights: bigint): void {
    if ((this.rightsBase & rights) !== rights) throw new WasiError(Errno.NOTCAPABLE);
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
  sync(): void {}
  close(): void {}
}

/**
 * The file type of a standard stream, as wasmtime reports it: a character device for a
 * terminal, unknown for a pipe or a buffer (so that libc buffers output fully, not by line).
 */
function streamType(terminal: boolean | undefined): number {
  return terminal ? FileType.CHARACTER_DEVICE : FileType.UNKNOWN;
}

/** Rights of stdin and of stdout/stderr, computed once (bigint arithmetic allocates). */
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

/** Converts `Deno.FileInfo` and the file's nanosecond times to a WASI {@link Filestat}. */
export function filestatOf(info: Deno.FileInfo, times: FileTimes): Filestat {
  const filetype = info.isFile
    ? FileType.REGULAR_FILE
    : info.isDirectory
    ? FileType.DIRECTORY
    : info.isSymlink
    ? FileType.SYMBOLIC_LINK
    : info.isBlockDevice
    ? FileType.BLOCK_DEVICE
    : info.isCharDevice
    ? FileType.CHARACTER_DEVICE
    : info.isSocket
    ? FileType.SOCKET_STREAM
    : FileType.UNKNOWN;
  return {
    dev: BigInt(info.dev ?? 0),
    ino: BigInt(info.ino ?? 0),
    filetype,
    nlink: BigInt(info.nlink ?? 1),
    size: BigInt(info.size),
    ...times,
  };
}

/** A regular host file opened through `path_open`. */
export class FileDescriptor extends Descriptor {
  readonly filetype = FileType.REGULAR_FILE;
  constructor(
    readonly file: Deno.FsFile,
    readonly hostPath: string,
    readonly readable: boolean,
    readonly writable: boolean,
    fdflags: number,
    /** What the directory it was opened from lets its files inherit. */
    inheritable: bigint = FILE_RIGHTS,
  ) {
    let rights = FILE_RIGHTS & inheritable;
    if (!readable) rights &= ~Rights.FD_READ;
    if (!writable) {
      rights &= ~(Rights.FD_WRITE | Rights.FD_ALLOCATE | Rights.FD_FILESTAT_SET_SIZE);
    }
    super(rights, rights);
    this.fdflags = fdflags;
  }
  override read(memory: Uint8Array, at: number, length: number): number {
    if (!this.readable) throw new WasiError(Errno.BADF);
    return this.file.readSync(memory.subarray(at, at + length)) ?? 0;
  }
  override write(memory: Uint8Array, at: number, length: number): number {
    if (!this.writable) throw new WasiError(Errno.BADF);
    const data = memory.subarray(at, at + length);
    // Append mode: every write goes to the current end, as O_APPEND does.
    if (this.fdflags & FdFlags.APPEND) this.file.seekSync(0, Deno.SeekMode.End);
    let written = 0;
    while (written < data.length) written += this.file.writeSync(data.subarray(written));
    return written;
  }
  override pread(memory: Uint8Array, at: number, length: number, offset: bigint): number {
    if (!this.readable) throw new WasiError(Errno.BADF);
    const saved = this.file.seekSync(0, Deno.SeekMode.Current);
    try {
      this.file.seekSync(Number(offset), Deno.SeekMode.Start);
      return this.file.readSync(memory.subarray(at, at + length)) ?? 0;
    } finally {
      this.file.seekSync(saved, Deno.SeekMode.Start);
    }
  }
  override pwrite(memory: Uint8Array, at: number, length: number, offset: bigint): number {
    if (!this.writable) throw new WasiError(Errno.BADF);
    const data = memory.subarray(at, at + length);
    const saved = this.file.seekSync(0, Deno.SeekMode.Current);
    try {
      this.file.seekSync(Number(offset), Deno.SeekMode.Start);
      let written = 0;
      while (written < data.length) written += this.file.writeSync(data.subarray(written));
      return written;
    } finally {
      this.file.seekSync(saved, Deno.SeekMode.Start);
    }
  }
  override seek(offset: bigint, whence: number): bigint {
    const mode = whence === Whence.SET
      ? Deno.SeekMode.Start
      : whence === Whence.CUR
      ? Deno.SeekMode.Current
      : whence === Whence.END
      ? Deno.SeekMode.End
      : undefined;
    if (mode === undefined) throw new WasiError(Errno.INVAL);
    if (mode === Deno.SeekMode.Start && offset < 0n) throw new WasiError(Errno.INVAL);
    return BigInt(this.file.seekSync(Number(offset), mode));
  }
  override stat(): Filestat {
    return filestatOf(this.file.statSync(), fileTimes(this.hostPath, true));
  }
  override setSize(size: bigint): void {
    this.file.truncateSync(Number(size));
  }
  override sync(): void {
    this.file.syncSync();
  }
  override close(): void {
    this.file.close();
  }
}

/** A host directory: a preopened volume or one opened beneath it. */
export class DirectoryDescriptor extends Descriptor {
  readonly filetype = FileType.DIRECTORY;
  /** Entries read by the last `fd_readdir` that started at cookie 0, reused by later cookies. */
  listing: { name: string; ino: bigint; filetype: number }[] | undefined;

  constructor(
    /** The directory's real path on the host: path lookups never leave it. */
    readonly hostPath: string,
    /** The guest path of a preopen (what `fd_prestat_dir_name` reports); undefined otherwise. */
    readonly preopenName?: string,
    /** Beneath a read-only volume: nothing may be created, changed or removed. */
    readonly readOnly = false,
    /** What the directory it was opened from lets it inherit (everything for a preopen). */
    inheritable: bigint = DIRECTORY_RIGHTS | FILE_RIGHTS,
  ) {
    super(DIRECTORY_RIGHTS & inheritable, inheritable);
  }
  override stat(): Filestat {
    return filestatOf(Deno.statSync(this.hostPath), fileTimes(this.hostPath, true));
  }
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
}
