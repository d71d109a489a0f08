import { assertEquals, assertOk } from "../_assert.ts";
import { ModuleLog } from "../../src/server/module_log.ts";
import { tempDir } from "../_temp.ts";

Deno.test("module log: appends in order; at its limit it rotates, so a route keeps at most twice it", async () => {
  const dir = await tempDir("wagi-modlog-");
  const log = new ModuleLog(dir, 1000);
  const line = (i: number) => new TextEncoder().encode(`line ${String(i).padStart(4, "0")}\n`);
  // Many writes at once, as many requests of one route end together.
  await Promise.all(Array.from({ length: 500 }, (_, i) => log.append("route", line(i))));
  const file = log.fileFor("route");
  const current = await Deno.readTextFile(file);
  const previous = await Deno.readTextFile(`${file}.1`);
  assertOk(current.length <= 1000 && previous.length <= 1000, "each file within the limit");
  // The latest lines are in the current file, in order, right after the previous file's.
  const lines = (previous + current).trim().split("\n");
  assertEquals(lines.at(-1), "line 0499");
  const numbers = lines.map((l) => Number(l.slice(5)));
  assertEquals(numbers, numbers.toSorted((a, b) => a - b), "in the order they were appended");
  // One write over the limit keeps its end.
  await log.append("big", new Uint8Array(5000).fill(0x61));
  assertEquals((await Deno.stat(log.fileFor("big"))).size, 1000);
});
