/**
 * Sandboxed path lookup: a guest path, relative to a directory descriptor, resolved one
 * component at a time so that neither `..`, absolute paths nor symlinks leave that directory.
 * @module
 */

import { Errno, WasiError } from "./errno.ts";

/** How many symlinks one lookup may expand before it fails with `LOOP` (Linux's limit). */
const MAX_SYMLINK_EXPANSIONS = 40;

/** A guest path resolved to a host path beneath its base directory. */
export interface ResolvedPath {
  /** The host path; the base directory itself when the guest path was `.`. */
  hostPath: string;
  /** The guest path ended in `/`, so the object must be a directory. */
  mustBeDirectory: boolean;
}

function componentsOf(path: string): string[] {
  return path.split("/").filter((part) => part !== "" && part !== ".");
}

/**
 * Resolves `path` beneath `baseHostPath`. Every component but the last is followed if it is a
 * symlink; the last only when `followFinal` (or the path ends in `/`). Escapes fail with
 * `PERM`, as in wasmtime; a missing intermediate directory with `NOENT`.
 */
export function resolveBeneath(
  baseHostPath: string,
  path: string,
  followFinal: boolean,
): ResolvedPath {
  if (path === "") throw new WasiError(Errno.NOENT);
  if (path.includes("\0")) throw new WasiError(Errno.INVAL);
  if (path.startsWith("/")) throw new WasiError(Errno.PERM);
  const mustBeDirectory = path.endsWith("/");
  const follow = followFinal || mustBeDirectory;
  const pending = componentsOf(path);
  const resolved: string[] = [];
  let expansions = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === "..") {
      if (resolved.length === 0) throw new WasiError(Errno.PERM);
      resolved.pop();
      continue;
    }
    const isLast = pending.length === 0;
    if (isLast && !follow) {
      resolved.push(part);
      break;
    }
    const candidate = joinHost(baseHostPath, [...resolved, part]);
    let info: Deno.FileInfo;
    try {
      info = Deno.lstatSync(candidate);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound && isLast) {
        resolved.push(part);
        break;
      }
      throw error;
    }
    if (info.isSymlink) {
      if (++expansions > MAX_SYMLINK_EXPANSIONS) throw new WasiError(Errno.LOOP);
      const target = Deno.readLinkSync(candidate);
      if (target.startsWith("/")) throw new WasiError(Errno.PERM);
      pending.unshift(...componentsOf(target));
      continue;
    }
    // A file where a directory must be: mid-path, or last with a trailing slash.
    if ((!isLast || mustBeDirectory) && !info.isDirectory) throw new WasiError(Errno.NOTDIR);
    resolved.push(part);
  }
  return { hostPath: joinHost(baseHostPath, resolved), mustBeDirectory };
}

/** Joins a host directory and path components with `/`. */
export function joinHost(base: string, parts: string[]): string {
  if (parts.length === 0) return base;
  return (base.endsWith("/") ? base : base + "/") + parts.join("/");
}
