/**
 * `path_*`: operations on paths beneath a directory descriptor, all through the sandbox.
 * @module
 */

import { Errno, WasiError } from "../errno.ts";
import { FdFlags, LookupFlags, OFlags, Rights } from "../constants.ts";
import { DirectoryDescriptor, FileDescriptor, filestatOf } from "../descriptors.ts";
import { syscall } from "../syscall.ts";
import type { WasiState } from "../state.ts";
import type { EffectTable } from "../effects.ts";
import type { SnapshotLayout } from "../layout.ts";
import { resolveBeneath } from "../sandbox.ts";
import { fileTimes, setFileTimes } from "../file_times.ts";
import { newTimes } from "./fd.ts";

/** Rights that need the file opened for writing. */
const WRITE_RIGHTS = Rights.FD_WRITE | Rights.FD_ALLOCATE | Rights.FD_FILESTAT_SET_SIZE;

/** Whether `path_open` with these arguments opens the host file for writing. */
function opensForWriting(oflags: number, rights: bigint, fdflags: number): boolean {
  return (BigInt.asUintN(64, rights) & WRITE_RIGHTS) !== 0n || (fdflags & FdFlags.APPEND) !== 0 ||
    (oflags & OFlags.TRUNC) !== 0;
}

/** What each path call does beyond returning (see effects.ts). */
export const PATH_EFFECTS: EffectTable = {
  // Opening may create or truncate a file, or hand out a descriptor that can change one.
  path_open: (
    _state: WasiState,
    _dirFd: number,
    _lookupFlags: number,
    _pathPtr: number,
    _pathLen: number,
    oflags: number,
    rights: bigint,
    _inheriting: bigint,
    fdflags: number,
  ) => opensForWriting(oflags, rights, fdflags) || oflags & OFlags.CREAT ? "lasting" : "run-local",
  path_filestat_get: "pure",
  path_filestat_set_times: "lasting",
  path_create_directory: "lasting",
  path_remove_directory: "lasting",
  path_unlink_file: "lasting",
  path_readlink: "pure",
  path_rename: "lasting",
  path_symlink: "lasting",
  path_link: "lasting",
};

/** Stat that answers `undefined` for a path that does not exist. */
function statIfExists(path: string, follow: boolean): Deno.FileInfo | undefined {
  try {
    return follow ? Deno.statSync(path) : Deno.lstatSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/**
 * Refuses a new link name that ends in `/` (it would name a directory, which a link is not):
 * `EXIST` when something is there already, else `NOENT`.
 */
function refuseDirectoryName(name: { hostPath: string; mustBeDirectory: boolean }): void {
  if (name.mustBeDirectory) {
    throw new WasiError(statIfExists(name.hostPath, false) ? Errno.EXIST : Errno.NOENT);
  }
}

/** The path calls for `host`, with `layout`'s records. */
export function pathCalls(host: WasiState, layout: SnapshotLayout) {
  const memory = host.memory;

  /** Reads a guest path and resolves it beneath directory `fd`, checking `right`. */
  const resolve = (fd: number, right: bigint, ptr: number, len: number, follow: boolean) => {
    const dir = host.directory(fd);
    dir.require(right);
    return { ...resolveBeneath(dir.hostPath, memory.string(ptr, len), follow), dir };
  };
  /** Like `resolve`, for a call that changes the file system: refused on read-only volumes. */
  const resolveToChange = (
    fd: number,
    right: bigint,
    ptr: number,
    len: number,
    follow: boolean,
  ) => {
    host.directory(fd).requireWritable();
    return resolve(fd, right, ptr, len, follow);
  };

  return {
    path_open: syscall((
      dirFd: number,
      lookupFlags: number,
      pathPtr: number,
      pathLen: number,
      oflags: number,
      rightsBase: bigint,
      _rightsInheriting: bigint,
      fdflags: number,
      resultPtr: number,
    ) => {
      const follow = (lookupFlags & LookupFlags.SYMLINK_FOLLOW) !== 0;
      const { hostPath, mustBeDirectory, dir } = resolve(
        dirFd,
        Rights.PATH_OPEN,
        pathPtr,
        pathLen,
        follow,
      );
      const info = statIfExists(hostPath, follow);
      if (info?.isSymlink) throw new WasiError(Errno.LOOP);
      const rights = BigInt.asUintN(64, rightsBase);
      const writable = opensForWriting(oflags, rights, fdflags);
      const wantsDirectory = (oflags & OFlags.DIRECTORY) !== 0 || mustBeDirectory;
      if (writable || oflags & OFlags.CREAT) dir.requireWritable();
      // Truncating through a path needs the directory's right to set sizes by path.
      if (oflags & OFlags.TRUNC && !(dir.rightsBase & Rights.PATH_FILESTAT_SET_SIZE)) {
        throw new WasiError(Errno.PERM);
      }

      if (info && oflags & OFlags.CREAT && oflags & OFlags.EXCL) throw new WasiError(Errno.EXIST);
      if (info?.isDirectory) {
        if (writable) throw new WasiError(Errno.ISDIR);
        const opened = new DirectoryDescriptor(
          hostPath,
          undefined,
          dir.readOnly,
          dir.rightsInheriting,
        );
        memory.setU32(resultPtr, host.allocate(opened));
        return;
      }
      if (wantsDirectory) throw new WasiError(info ? Errno.NOTDIR : Errno.NOENT);
      if (!info && !(oflags & OFlags.CREAT)) throw new WasiError(Errno.NOENT);

      // The host file is opened for reading unless the guest asked to write only; the guest may
      // read only when the directory passes FD_READ on to what it opens.
      const hostRead = (rights & Rights.FD_READ) !== 0n || !writable;
      const readable = hostRead && (dir.rightsInheriting & Rights.FD_READ) !== 0n;
      if (!info && !writable) {
        // Deno only creates files opened for writing: create it first, then open read-only.
        Deno.openSync(hostPath, { write: true, createNew: true }).close();
      }
      const file = Deno.openSync(hostPath, {
        read: hostRead,
        write: writable,
        create: writable && (oflags & OFlags.CREAT) !== 0,
        createNew: writable && (oflags & OFlags.CREAT) !== 0 && (oflags & OFlags.EXCL) !== 0,
        truncate: (oflags & OFlags.TRUNC) !== 0,
      });
      const descriptor = new FileDescriptor(
        file,
        hostPath,
        readable,
        writable,
        fdflags,
        dir.rightsInheriting,
      );
      memory.setU32(resultPtr, host.allocate(descriptor));
    }),
    path_filestat_get: syscall(
      (fd: number, flags: number, pathPtr: number, pathLen: number, resultPtr: number) => {
        const follow = (flags & LookupFlags.SYMLINK_FOLLOW) !== 0;
        const { hostPath } = resolve(fd, Rights.PATH_FILESTAT_GET, pathPtr, pathLen, follow);
        const info = follow ? Deno.statSync(hostPath) : Deno.lstatSync(hostPath);
        layout.writeFilestat(memory, resultPtr, filestatOf(info, fileTimes(hostPath, follow)));
      },
    ),
    path_filestat_set_times: syscall((
      fd: number,
      flags: number,
      pathPtr: number,
      pathLen: number,
      atim: bigint,
      mtim: bigint,
      fstFlags: number,
    ) => {
      const follow = (flags & LookupFlags.SYMLINK_FOLLOW) !== 0;
      const { hostPath } = resolveToChange(
        fd,
        Rights.PATH_FILESTAT_SET_TIMES,
        pathPtr,
        pathLen,
        follow,
      );
      const [a, m] = newTimes(atim, mtim, fstFlags);
      setFileTimes(hostPath, a, m, follow);
    }),
    path_create_directory: syscall((fd: number, pathPtr: number, pathLen: number) => {
      const { hostPath } = resolveToChange(
        fd,
        Rights.PATH_CREATE_DIRECTORY,
        pathPtr,
        pathLen,
        false,
      );
      Deno.mkdirSync(hostPath);
    }),
    path_remove_directory: syscall((fd: number, pathPtr: number, pathLen: number) => {
      const { hostPath } = resolveToChange(
        fd,
        Rights.PATH_REMOVE_DIRECTORY,
        pathPtr,
        pathLen,
        false,
      );
      if (!Deno.lstatSync(hostPath).isDirectory) throw new WasiError(Errno.NOTDIR);
      Deno.removeSync(hostPath);
    }),
    path_unlink_file: syscall((fd: number, pathPtr: number, pathLen: number) => {
      const { hostPath, mustBeDirectory } = resolveToChange(
        fd,
        Rights.PATH_UNLINK_FILE,
        pathPtr,
        pathLen,
        false,
      );
      const info = Deno.lstatSync(hostPath);
      if (info.isDirectory) throw new WasiError(Errno.ISDIR);
      if (mustBeDirectory) throw new WasiError(Errno.NOTDIR);
      Deno.removeSync(hostPath);
    }),
    path_readlink: syscall((
      fd: number,
      pathPtr: number,
      pathLen: number,
      bufPtr: number,
      bufLen: number,
      resultPtr: number,
    ) => {
      const { hostPath } = resolve(fd, Rights.PATH_READLINK, pathPtr, pathLen, false);
      const target = new TextEncoder().encode(Deno.readLinkSync(hostPath));
      const length = Math.min(target.length, bufLen);
      memory.write(bufPtr, target.subarray(0, length));
      memory.setU32(resultPtr, length);
    }),
    path_rename: syscall((
      fd: number,
      oldPtr: number,
      oldLen: number,
      newFd: number,
      newPtr: number,
      newLen: number,
    ) => {
      const from = resolveToChange(fd, Rights.PATH_RENAME_SOURCE, oldPtr, oldLen, false);
      const to = resolveToChange(newFd, Rights.PATH_RENAME_TARGET, newPtr, newLen, false);
      Deno.renameSync(from.hostPath, to.hostPath);
    }),
    path_symlink: syscall((
      oldPtr: number,
      oldLen: number,
      fd: number,
      newPtr: number,
      newLen: number,
    ) => {
      const target = memory.string(oldPtr, oldLen);
      if (target.startsWith("/")) throw new WasiError(Errno.PERM);
      const link = resolveToChange(fd, Rights.PATH_SYMLINK, newPtr, newLen, false);
      refuseDirectoryName(link);
      Deno.symlinkSync(target, link.hostPath);
    }),
    path_link: syscall((
      oldFd: number,
      oldFlags: number,
      oldPtr: number,
      oldLen: number,
      newFd: number,
      newPtr: number,
      newLen: number,
    ) => {
      const follow = (oldFlags & LookupFlags.SYMLINK_FOLLOW) !== 0;
      const from = resolve(oldFd, Rights.PATH_LINK_SOURCE, oldPtr, oldLen, follow);
      const to = resolveToChange(newFd, Rights.PATH_LINK_TARGET, newPtr, newLen, false);
      refuseDirectoryName(to);
      Deno.linkSync(from.hostPath, to.hostPath);
    }),
  };
}
