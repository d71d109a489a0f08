/**
 * POSIX path helpers for file names given on the command line and in `modules.toml`. Our own,
 * not `node:path`: loading Node's compatibility layer costs tens of milliseconds at start.
 * @module
 */

/** True when `path` is absolute. */
export function isAbsolute(path: string): boolean {
  return path.startsWith("/");
}

/** `path` with `.` and `..` segments and repeated slashes resolved (`..` stops at `/`). */
export function normalize(path: string): string {
  const absolute = isAbsolute(path);
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === ".." && parts.length > 0 && parts.at(-1) !== "..") parts.pop();
    else if (part !== ".." || !absolute) parts.push(part);
  }
  const joined = parts.join("/");
  return absolute ? `/${joined}` : joined || ".";
}

/** The segments joined by `/`, normalized. */
export function join(...segments: string[]): string {
  return normalize(segments.filter((segment) => segment !== "").join("/"));
}

/** The directory part of `path` (`.` when it has none). */
export function dirname(path: string): string {
  const normalized = normalize(path);
  const slash = normalized.lastIndexOf("/");
  if (slash === -1) return ".";
  return slash === 0 ? "/" : normalized.slice(0, slash);
}

/** The path of a `file:` URL, percent-escapes decoded. */
export function fromFileUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.protocol !== "file:") throw new TypeError(`not a file URL: ${url}`);
  return decodeURIComponent(parsed.pathname);
}

/** True when something exists at `path` (following symbolic links). */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Reads a whole file. `blocking` reads it on the calling thread: for small files about four
 * times cheaper than handing the read to Deno's I/O threads, but nothing else runs meanwhile
 * (what a start wants, before anything is served; not a server answering requests).
 */
export function readBytes(path: string, blocking: boolean): Promise<Uint8Array<ArrayBuffer>> {
  if (!blocking) return Deno.readFile(path);
  try {
    return Promise.resolve(Deno.readFileSync(path));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Writes `bytes` to `path` (creating its directory) beside it first, then renames it into
 * place: a reader never sees half a file. Throws what the file system said.
 */
export async function replaceFile(path: string, bytes: Uint8Array): Promise<void> {
  const temp = `${path}.${Deno.pid}.${crypto.randomUUID()}.tmp`;
  try {
    await Deno.mkdir(dirname(path), { recursive: true });
    await Deno.writeFile(temp, bytes);
    await Deno.rename(temp, path);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}
