/**
 * A module with a second, unexported memory cannot carry bytes from one request to the next:
 * only the exported memory could be put back, so such instances are never reused, on the
 * server's thread or in the pool.
 * @module
 */

import wabtInit from "wabt";
import { assertEquals } from "../_assert.ts";
import { writeConfig } from "../_temp.ts";
import { startServer } from "./_server.ts";

/** Counts its runs in its hidden memory and prints the count: 1 on every fresh instance. */
const TWO_MEMORIES = `(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory $shown (export "memory") 1)
  (memory $hidden 1)
  (data $shown (i32.const 16) "Content-Type: text/plain\\n\\nruns: 0\\n")
  (func (export "_start")
    (i32.store8 $hidden (i32.const 5) (i32.add (i32.load8_u $hidden (i32.const 5)) (i32.const 1)))
    (i32.store8 $shown (i32.const 48) (i32.add (i32.const 48) (i32.load8_u $hidden (i32.const 5))))
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 34))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`;

Deno.test("a second memory does not carry state between requests, inline or in the pool", async () => {
  // Our text compiler leaves multi-memory off; the test builds the binary itself.
  const wabt = await wabtInit();
  // wabt's types predate the multi-memory feature flag its parser takes.
  const features = { multi_memory: true } as unknown as Parameters<typeof wabt.parseWat>[2];
  const parsed = wabt.parseWat("two_memories.wat", TWO_MEMORIES, features);
  parsed.resolveNames();
  (parsed.validate as (features: unknown) => void)(features);
  const binary = new Uint8Array(parsed.toBinary({}).buffer);
  parsed.destroy();
  const config = await writeConfig(`[[module]]\nroute = "/"\nmodule = "two.wasm"\n`, {
    "two.wasm": binary,
  });
  for (const where of [[], ["--pool-only"]]) {
    const server = await startServer(["-c", config, "--workers", "1", ...where]);
    try {
      for (let i = 0; i < 4; i++) {
        assertEquals(await (await fetch(`${server.url}/`)).text(), "runs: 1\n", where.join(" "));
      }
    } finally {
      await server.stop();
    }
  }
});
