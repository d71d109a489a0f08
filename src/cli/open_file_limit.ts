/**
 * Raising the process's limit on open descriptors to its hard limit at start (Linux, through
 * libc): every connection, pool file and volume file takes one, and the soft limit is often
 * 1,024 where the hard one is far higher.
 * @module
 */

/** `RLIMIT_NOFILE` on Linux (x86_64 and aarch64). */
const RLIMIT_NOFILE = 7;

const symbols = {
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
} as const;

/**
 * Raises the soft limit on open descriptors to the hard one. Returns the limit now in force,
 * or undefined where it cannot be read (not Linux, no FFI permission).
 */
export function raiseOpenFileLimit(): number | undefined {
  if (Deno.build.os !== "linux") return undefined;
  let libc;
  try {
    libc = Deno.dlopen("libc.so.6", symbols);
  } catch {
    return undefined;
  }
  try {
    const limits = new BigUint64Array(2);
    const bytes = new Uint8Array(limits.buffer);
    if (libc.symbols.getrlimit(RLIMIT_NOFILE, bytes) !== 0) return undefined;
    if (limits[0] < limits[1]) {
      limits[0] = limits[1];
      if (libc.symbols.setrlimit(RLIMIT_NOFILE, bytes) !== 0) return undefined;
    }
    return Number(limits[0]);
  } finally {
    libc.close();
  }
}
