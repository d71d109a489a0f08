/**
 * Watching instance reuse from a test: how many instances a runner makes, and a module whose
 * start function counts its runs.
 * @module
 */

/** Counts the instances made while `fn` runs (the engine's constructor, wrapped meanwhile). */
export async function countingInstances(fn: () => unknown): Promise<number> {
  const Instance = WebAssembly.Instance;
  let made = 0;
  WebAssembly.Instance = class extends Instance {
    constructor(module: WebAssembly.Module, imports?: WebAssembly.Imports) {
      super(module, imports);
      made++;
    }
  };
  try {
    await fn();
  } finally {
    WebAssembly.Instance = Instance;
  }
  return made;
}

/** What {@link startCounter} prints on a fresh instance: its start function ran once. */
export const STARTED_ONCE = "Content-Type: text/plain\n\nstarts: 1\n";

/**
 * WebAssembly text of a module whose start function counts its runs in memory (after `call`,
 * e.g. a host call) and whose `_start` prints the count.
 */
export function startCounter(call = ""): string {
  return `(module
    (import "wasi_snapshot_preview1" "fd_write"
      (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "sched_yield" (func $yield (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 16) "Content-Type: text/plain\\n\\nstarts: 0\\n")
    (func $count
      ${call}
      (i32.store8 (i32.const 50) (i32.add (i32.load8_u (i32.const 50)) (i32.const 1))))
    (start $count)
    (func (export "_start")
      (i32.store (i32.const 0) (i32.const 16))
      (i32.store (i32.const 4) (i32.const 36))
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`;
}
