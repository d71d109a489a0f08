/**
 * The process's limit on open descriptors: every connection, pool file and volume file takes
 * one. Deno itself raises the soft limit to the hard one when it starts, so this only reads it
 * (from `/proc`, which costs far less at start than loading libc through FFI).
 * @module
 */

/** The limit on open descriptors now in force; undefined where it cannot be read (not Linux). */
export function openFileLimit(): number | undefined {
  let limits: string;
  try {
    limits = Deno.readTextFileSync("/proc/self/limits");
  } catch {
    return undefined;
  }
  // "Max open files            8192                 8192                 files"
  const soft = limits.match(/^Max open files\s+(\d+|unlimited)/m)?.[1];
  if (soft === undefined) return undefined;
  return soft === "unlimited" ? Infinity : Number(soft);
}
