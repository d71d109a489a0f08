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
  const free = freeDescriptors();
  return free === undefined ? true : free >= THREAD_DESCRIPTORS;
}

/**
 * Descriptors free now; undefined where they cannot be counted (not Linux, no /proc, no limit),
 * 0 when counting failed for want of one.
 */
function freeDescriptors(): number | undefined {
  if (Deno.build.os !== "linux") return undefined;
  try {
    limit ??= softLimit(Deno.readTextFileSync("/proc/self/limits")) ?? Infinity;
    if (limit === Infinity) return undefined;
    // Counting takes a descriptor too.
    let open = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) open++;
    return limit - open;
  } catch (error) {
    return outOfDescriptors(error) ? 0 : undefined;
  }
}

/**
 * Descriptors guests may never take, all of them together: a thread that starts needs some
 * (and Deno aborts the process when it cannot have them), so does the server for connections
 * and its own files. A thread checks there is room before it starts, but it takes its
 * descriptors while guests running elsewhere may be opening theirs: they must stop short.
 */
export const GUEST_RESERVE = 2 * THREAD_DESCRIPTORS;

/**
 * Threads assumed to take guest descriptors at once, each within its share of the room counted:
 * a thread counts again once it has taken its share.
 */
const SHARERS = 256;

/** Guest descriptors taken on this thread since it last counted, and how many it may take. */
let uncounted = 0;
let share = 0;

/**
 * Whether a guest may keep one more descriptor (it has just opened it): only while at least
 * {@link GUEST_RESERVE} are free. Counting reads a directory, so a thread counts again only
 * once its guests have taken a share of the room it last counted: at once when little is free,
 * rarely when much is.
 */
export function roomForGuestDescriptor(): boolean {
  if (++uncounted <= share) return true;
  uncounted = 0;
  const free = freeDescriptors();
  if (free === undefined) {
    share = Infinity;
    return true;
  }
  share = Math.max(0, Math.floor((free - GUEST_RESERVE) / SHARERS));
  return free >= GUEST_RESERVE;
}
