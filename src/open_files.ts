/**
 * The process's open descriptors: every connection, pool file and volume file takes one, and so
 * does every thread's event loop. Deno itself raises the soft limit to the hard one when it
 * starts, so this only reads it (from `/proc`, which costs far less at start than loading libc
 * through FFI).
 * @module
 */

/** The limit on open descriptors now in force; undefined where it cannot be read (not Linux). */
export function openFileLimit(): number | undefined {
  try {
    return softLimit(Deno.readTextFileSync("/proc/self/limits"));
  } catch {
    return undefined;
  }
}

/** The soft limit on open files in the text of `/proc/self/limits`. */
function softLimit(limits: string): number | undefined {
  // "Max open files            8192                 8192                 files"
  const soft = limits.match(/^Max open files\s+(\d+|unlimited)/m)?.[1];
  if (soft === undefined) return undefined;
  return soft === "unlimited" ? Infinity : Number(soft);
}

/**
 * Descriptors that must be free to start a thread (a pool worker, a server isolate): its event
 * loop opens a few as it starts, and the rest is margin for what other threads open meanwhile.
 */
export const THREAD_DESCRIPTORS = 64;

let limit: number | undefined;

/** Whether `error` says the process (or the system) has no descriptor left. */
function outOfDescriptors(error: unknown): boolean {
  return /os error (24|23)\b|Too many open files/.test(String((error as Error)?.message));
}

/**
 * Whether a thread may be started now. Deno 2.9 aborts the whole process when a new worker's
 * event loop cannot get its descriptors (a panic in its runtime, not an error we can catch), so
 * a guest or a flood of connections that took the process's last descriptors must make the
 * next start wait, not crash the server. True where descriptors cannot be counted (not Linux,
 * no /proc).
 */
export function roomForThread(): boolean {
  if (Deno.build.os !== "linux") return true;
  try {
    limit ??= softLimit(Deno.readTextFileSync("/proc/self/limits")) ?? Infinity;
    if (limit === Infinity) return true;
    // Counting takes a descriptor too.
    let open = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) open++;
    return limit - open >= THREAD_DESCRIPTORS;
  } catch (error) {
    return !outOfDescriptors(error);
  }
}
