/**
 * Runs a fixture that prints one `name: value` line per check, and reads the lines back.
 * @module
 */

import { assertEquals } from "../_assert.ts";
import { runToEnd, type TestRun } from "../_run.ts";

/** What the fixture printed, by check name; asserts that it ran to a clean exit. */
export async function checksOf(run: TestRun): Promise<Map<string, number>> {
  const result = await runToEnd(run);
  assertEquals([result.exitCode, result.failure], [0, undefined]);
  const checks = new Map<string, number>();
  for (const line of new TextDecoder().decode(result.stdout).trim().split("\n")) {
    const [name, value] = line.split(": ");
    checks.set(name, Number(value));
  }
  return checks;
}

/** Asserts every check in `table` printed its expected value. */
export function expectChecks(checks: Map<string, number>, table: Record<string, number>) {
  for (const [name, value] of Object.entries(table)) assertEquals(checks.get(name), value, name);
}
