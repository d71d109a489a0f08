/**
 * `path_*`: operations on paths beneath a directory descriptor, all through the sandbox: the
 * kernel resolves every path beneath the directory's host descriptor (see sandbox.ts).
 * @module
 */

import { Errno, WasiError } from "../errno.ts";
import { FdFlags, FILE_WRITE_RIGHTS, LookupFlags, OFlags, Rights, rightsOf } from "../constants.ts";
import { DirectoryDescriptor, FileDescriptor, filestatOf, isDirectory } from "../descriptors.ts";
import { syscall } from "../syscall.ts";
import type { WasiState } from "../state.ts";
import type { EffectTable } from "../effects.ts";
import type { SnapshotLayout } from "../layout.ts";
import { checkPath, withEntry, withNamed } from "../sandbox.ts";
import * as host from "../linux_fs.ts";
import { newTimes } from "./fd.ts";

/** Whether `path_open` with these arguments opens the host file for writing. */
function opensForWriting(oflags: number, rights: number, fdflags: number): boolean {
  return (rights & FILE_WRITE_RIGHTS) !== 0 || (fdflags & FdFlags.APPEND) !== 0 ||
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
  ) =>
    opensForWriting(oflags, rightsOf(rights), fdflags) || oflags & OFlags.CREAT
      ? "lasting"
      : "run-local",
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

/**
 * Refuses a new link name that ends in `/` (it would name a directory, which a link is not):
 * `EXIST` when something is there already, else `NOENT`.
 */
function refuseDirectoryName(entry: { parent: number; name: string; mustBeDirectory: boolean }) {
  if (!entry.mustBeDirectory) return;
  let exists = true;
  try {
    host.close(host.openBeneath(entry.parent, entry.name, host.O.PATH, false));
  } catch {
    exists = false;
  }
  throw new WasiError(exists ? Errno.EXIST : Errno.NOENT);
}

/** The host access mode and flags for `path_open`'s arguments. */
function openFlags(oflags: number, hostRead: boolean, writable: boolean, fdflags: number) {
  let flags = writable ? (hostRead ? host.O.RDWR : host.O.WRONLY) : host.O.RDONLY;
  if (oflags & OFlags.CREAT) flags |= host.O.CREAT;
  if (oflags & OFlags.EXCL) flags |= host.O.EXCL;
  if (oflags & OFlags.TRUNC) flags |= host.O.TRUNC;
  if (oflags & OFlags.DIRECTORY) flags |= host.O.DIRECTORY;
  if (fdflags & FdFlags.APPEND) flags |= host.O.APPEND;
  // Never block on opening a FIFO (or reading an empty one): a guest cannot be woken there.
  return flags | host.O.NONBLOCK;
}

/** The path calls for `state`, with `layout`'s records. */
export function pathCalls(state: WasiState, layout: SnapshotLayout) {
  const memory = state.memory;

  /** The directory `fd`, holding `rights`, and the guest path at `ptr`. */
  const lookup = (fd: number, rights: number, ptr: number, len: number) => {
    const dir = state.directory(fd);
    dir.require(rights);
    return { dir, path: memory.string(ptr, len) };
  };
  /** Like `lookup`, for a call that changes the file system: refused on read-only volumes. */
  const lookupToChange = (fd: number, right: number, ptr: number, len: number) => {
    state.directory(fd).requireWritable();
    return lookup(fd, right, ptr, len);
  };

  return {
    path_open: syscall((
      dirFd: number,
      lookupFlags: number,
      pathPtr: number,
      pathLen: number,
      oflags: number,
      rightsBase: bigint,
      rightsInheriting: bigint,
      fdflags: number,
      resultPtr: number,
    ) => {
      const follow = (lookupFlags & LookupFlags.SYMLINK_FOLLOW) !== 0;
      const rights = rightsOf(rightsBase);
      const writable = opensForWriting(oflags, rights, fdflags);
      if (writable || oflags & OFlags.CREAT) state.directory(dirFd).requireWritable();
      // Creating needs the directory's right to create files; truncating, to set sizes by path.
      const needed = Rights.PATH_OPEN | (oflags & OFlags.CREAT ? Rights.PATH_CREATE_FILE : 0) |
        (oflags & OFlags.TRUNC ? Rights.PATH_FILESTAT_SET_SIZE : 0);
      const { dir, path } = lookup(dirFd, needed, pathPtr, pathLen);
      const { mustBeDirectory } = checkPath(path);
      const wantsDirectory = (oflags & OFlags.DIRECTORY) !== 0 || mustBeDirectory;
      // The host file is opened for reading unless the guest asked to write only.
      const readable = (rights & Rights.FD_READ) !== 0 || !writable;
      // The new descriptor holds what was asked for, within what the directory passes on;
      // rights asked for beyond that are left out, not refused (spec: an implementation may
      // grant fewer), and the calls needing them answer NOTCAPABLE.
      const base = rights & dir.rightsInheriting;
      const inheriting = rightsOf(rightsInheriting) & dir.rightsInheriting;
      const fd = host.openBeneath(
        dir.fd,
        path,
        openFlags(oflags, readable, writable, fdflags),
        follow || mustBeDirectory,
      );
      try {
        if (isDirectory(fd)) {
          // Opened for reading: the kernel refuses a directory for writing (ISDIR) itself.
          const opened = new DirectoryDescriptor(fd, undefined, dir.readOnly, base, inheriting);
          memory.setU32(resultPtr, state.allocate(opened));
          return;
        }
        if (wantsDirectory) throw new WasiError(Errno.NOTDIR);
      } catch (error) {
        host.close(fd);
        throw error;
      }
      const file = new FileDescriptor(fd, readable, writable, fdflags, base, inheriting);
      memory.setU32(resultPtr, state.allocate(file));
    }),
    path_filestat_get: syscall(
      (fd: number, flags: number, pathPtr: number, pathLen: number, resultPtr: number) => {
        const follow = (flags & LookupFlags.SYMLINK_FOLLOW) !== 0;
        const { dir, path } = lookup(fd, Rights.PATH_FILESTAT_GET, pathPtr, pathLen);
        const stat = withNamed(dir.fd, path, follow, filestatOf);
        layout.writeFilestat(memory, resultPtr, stat);
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
      // Contradictory flags are refused before anything else.
      const [a, m] = newTimes(atim, mtim, fstFlags);
      const follow = (flags & LookupFlags.SYMLINK_FOLLOW) !== 0;
      const { dir, path } = lookupToChange(fd, Rights.PATH_FILESTAT_SET_TIMES, pathPtr, pathLen);
      if (follow) withNamed(dir.fd, path, true, (named) => host.setTimes(named, a, m));
      else {
        withEntry(
          dir.fd,
          path,
          Errno.INVAL,
          (entry) => host.setTimesAt(entry.parent, entry.name, a, m),
        );
      }
    }),
    path_create_directory: syscall((fd: number, pathPtr: number, pathLen: number) => {
      const { dir, path } = lookupToChange(fd, Rights.PATH_CREATE_DIRECTORY, pathPtr, pathLen);
      withEntry(dir.fd, path, Errno.EXIST, (entry) => host.mkdirAt(entry.parent, entry.name));
    }),
    path_remove_directory: syscall((fd: number, pathPtr: number, pathLen: number) => {
      const { dir, path } = lookupToChange(fd, Rights.PATH_REMOVE_DIRECTORY, pathPtr, pathLen);
      withEntry(
        dir.fd,
        path,
        Errno.INVAL,
        (entry) => host.unlinkAt(entry.parent, entry.name, true),
      );
    }),
    path_unlink_file: syscall((fd: number, pathPtr: number, pathLen: number) => {
      const { dir, path } = lookupToChange(fd, Rights.PATH_UNLINK_FILE, pathPtr, pathLen);
      withEntry(dir.fd, path, Errno.ISDIR, (entry) => {
        if (entry.mustBeDirectory) {
          // "name/": a directory is ISDIR, anything else NOTDIR, as before a removal.
          const named = host.openBeneath(entry.parent, entry.name, host.O.PATH, false);
          const directory = isDirectory(named);
          host.close(named);
          throw new WasiError(directory ? Errno.ISDIR : Errno.NOTDIR);
        }
        host.unlinkAt(entry.parent, entry.name, false);
      });
    }),
    path_readlink: syscall((
      fd: number,
      pathPtr: number,
      pathLen: number,
      bufPtr: number,
      bufLen: number,
      resultPtr: number,
    ) => {
      const { dir, path } = lookup(fd, Rights.PATH_READLINK, pathPtr, pathLen);
      const target = withEntry(
        dir.fd,
        path,
        Errno.INVAL,
        (entry) => host.readlinkAt(entry.parent, entry.name),
      );
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
      const from = lookupToChange(fd, Rights.PATH_RENAME_SOURCE, oldPtr, oldLen);
      const to = lookupToChange(newFd, Rights.PATH_RENAME_TARGET, newPtr, newLen);
      withEntry(
        from.dir.fd,
        from.path,
        Errno.BUSY,
        (source) =>
          withEntry(
            to.dir.fd,
            to.path,
            Errno.BUSY,
            (target) => host.renameAt(source.parent, source.name, target.parent, target.name),
          ),
      );
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
      const { dir, path } = lookupToChange(fd, Rights.PATH_SYMLINK, newPtr, newLen);
      withEntry(dir.fd, path, Errno.EXIST, (entry) => {
        refuseDirectoryName(entry);
        host.symlinkAt(target, entry.parent, entry.name);
      });
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
      // A link is a second name for the same file: made from a read-only volume, it would let
      // the file be changed through a writable one.
      const from = lookupToChange(oldFd, Rights.PATH_LINK_SOURCE, oldPtr, oldLen);
      const to = lookupToChange(newFd, Rights.PATH_LINK_TARGET, newPtr, newLen);
      withEntry(to.dir.fd, to.path, Errno.EXIST, (target) => {
        refuseDirectoryName(target);
        if (follow) {
          withNamed(
            from.dir.fd,
            from.path,
            true,
            (named) => host.linkOpened(named, target.parent, target.name),
          );
        } else {
          withEntry(
            from.dir.fd,
            from.path,
            Errno.PERM,
            (source) => host.linkAt(source.parent, source.name, target.parent, target.name),
          );
        }
      });
    }),
  };
}
