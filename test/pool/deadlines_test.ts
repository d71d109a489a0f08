import { assertEquals, assertOk } from "../_assert.ts";
import { Deadlines } from "../../src/pool/deadlines.ts";

Deno.test("deadlines: each expires once, in time, in deadline order; a cancelled one never does", async () => {
  const deadlines = new Deadlines();
  const started = performance.now();
  const fired: [string, number][] = [];
  const note = (name: string) => () => fired.push([name, performance.now() - started]);
  deadlines.add(120, note("a"));
  const cancelled = deadlines.add(60, note("cancelled"));
  deadlines.add(60, note("b"));
  deadlines.add(30, note("c"));
  deadlines.cancel(cancelled);
  deadlines.cancel(cancelled);
  await new Promise((resolve) => setTimeout(resolve, 250));
  assertEquals(fired.map(([name]) => name), ["c", "b", "a"]);
  for (const [name, at] of fired) {
    const due = { a: 120, b: 60, c: 30 }[name]!;
    assertOk(at >= due, `${name} expired early, at ${at} ms`);
  }
  // Added after the others expired: the timer is armed again.
  const again = new Promise<void>((resolve) => deadlines.add(20, resolve));
  await again;
  deadlines.close();
});
