/**
 * Lowering the CPU priority of the calling thread (Linux, through libc), so that guests running
 * in the pool's workers yield the cores to the server's own thread when both want them: a
 * module that spins until its timeout then slows the server down far less.
 * @module
 */

/** The `nice` value pool workers run at: the server's thread keeps 0. */
export const POOL_WORKER_NICE = 10;

const PRIO_PROCESS = 0;

const symbols = {
  gettid: { parameters: [], result: "i32" },
  getpriority: { parameters: ["i32", "u32"], result: "i32" },
  setpriority: { parameters: ["i32", "u32", "i32"], result: "i32" },
} as const;

/**
 * Sets this thread's nice value to `nice`, unless it already runs at that or a lower priority.
 * Returns false where it cannot (not Linux, no FFI permission, an old libc without `gettid`).
 */
export function lowerThreadPriority(nice: number): boolean {
  if (Deno.build.os !== "linux") return false;
  try {
    const libc = Deno.dlopen("libc.so.6", symbols);
    try {
      // On Linux, PRIO_PROCESS with a thread id reaches that one thread.
      const tid = libc.symbols.gettid();
      if (libc.symbols.getpriority(PRIO_PROCESS, tid) >= nice) return true;
      return libc.symbols.setpriority(PRIO_PROCESS, tid, nice) === 0;
    } finally {
      libc.close();
    }
  } catch {
    return false;
  }
}
