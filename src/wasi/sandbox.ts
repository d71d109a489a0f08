/**
 * Sandboxed path lookup: a guest path is checked, then handed to the kernel to resolve beneath
 * a directory descriptor (see linux_fs.ts), so that neither `..`, absolute paths, symlinks nor
 * a swap made meanwhile leave that directory. Calls that act on a name rather than open it
 * (`mkdir`, `unlink`, `rename`, …) get the directory that holds it, opened the same way, and
 * the name alone.
 * @module
 */

import { Errno, type ErrnoValue, WasiError } from "./errno.ts";
import { close, O, openBeneath } from "./linux_fs.ts";

/** A guest path, checked. */
export interface GuestPath {
  /** The path to give the kernel, relative. */
  path: string;
  /** The path ended in `/`, so the object must be a directory. */
  mustBeDirectory: boolean;
}

/** Checks a guest path: `NOENT` when empty, `INVAL` with a NUL, `PERM` when absolute. */
export function checkPath(path: string): GuestPath {
  if (path === "") throw new WasiError(Errno.NOENT);
  if (path.includes("\0")) throw new WasiError(Errno.INVAL);
  if (path.startsWith("/")) throw new WasiError(Errno.PERM);
  return { path, mustBeDirectory: path.endsWith("/") };
}

/**
 * Opens `path` beneath `dirFd` only to name it (`O_PATH`): for stat, times and links. The last
 * symlink is followed with `follow` (or a trailing `/`). The caller closes it.
 */
export function openToName(dirFd: number, path: string, follow: boolean): number {
  const checked = checkPath(path);
  return openBeneath(dirFd, checked.path, O.PATH, follow || checked.mustBeDirectory);
}

/** The directory holding a path's last component, and that component. */
export interface Entry {
  /** The host descriptor of the directory (the caller closes it). */
  parent: number;
  name: string;
  mustBeDirectory: boolean;
}

/**
 * Opens the directory holding `path`'s last component beneath `dirFd` (symlinks before it are
 * followed, inside the directory only), and returns it with that component. A last component
 * of `.` or `..` names no entry of its own: after checking that the path stays inside,
 * `dotErrno` is thrown (what the call answers for it).
 */
export function entryOf(dirFd: number, path: string, dotErrno: ErrnoValue): Entry {
  const checked = checkPath(path);
  let trimmed = checked.path;
  while (trimmed.endsWith("/")) trimmed = trimmed.slice(0, -1);
  const slash = trimmed.lastIndexOf("/");
  const name = trimmed.slice(slash + 1);
  const directory = slash === -1 ? "." : trimmed.slice(0, slash) || ".";
  if (name === "." || name === "..") {
    close(openBeneath(dirFd, trimmed, O.PATH | O.DIRECTORY, true));
    throw new WasiError(dotErrno);
  }
  const parent = openBeneath(dirFd, directory, O.PATH | O.DIRECTORY, true);
  return { parent, name, mustBeDirectory: checked.mustBeDirectory };
}

/** Runs `body` with the entry of `path`, closing its directory afterwards. */
export function withEntry<T>(
  dirFd: number,
  path: string,
  dotErrno: ErrnoValue,
  body: (entry: Entry) => T,
): T {
  const entry = entryOf(dirFd, path, dotErrno);
  try {
    return body(entry);
  } finally {
    close(entry.parent);
  }
}

/** Runs `body` with `path` opened to name it (see {@link openToName}), closing it afterwards. */
export function withNamed<T>(
  dirFd: number,
  path: string,
  follow: boolean,
  body: (fd: number) => T,
): T {
  const fd = openToName(dirFd, path, follow);
  try {
    return body(fd);
  } finally {
    close(fd);
  }
}
