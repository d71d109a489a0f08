import { assertEquals, assertOk } from "../_assert.ts";
import { InlineRunner } from "../../src/inline/runner.ts";
import { MoveToPool } from "../../src/inline/policy.ts";
import { prepareInline } from "../../src/inline/variants.ts";
import { watToWasm } from "../../src/wasm/wat.ts";
import { fixture } from "../_fixtures.ts";
import { countingInstances, startCounter, STARTED_ONCE } from "../_instances.ts";

const MIB = 1024 * 1024;

/** The inline variant of a fixture (text or binary). */
async function inlineVariantOf(name: string) {
  const path = fixture(name);
  const bytes = name.endsWith(".wat")
    ? await watToWasm(path, await Deno.readTextFile(path))
    : await Deno.readFile(path);
  const variant = await prepareInline(bytes, undefined);
  assertOk(typeof variant !== "string", `${name} has no inline variant: ${variant}`);
  return variant;
}

/** The checksum lines `scribble.wat` prints over `runs` runs, each with different input. */
function scribbleChecksums(runner: InlineRunner, runs: number): string[] {
  const sums: string[] = [];
  for (let i = 0; i < runs; i++) {
    const result = runner.run({
      entrypoint: "_start",
      args: ["/scribble", `run=${i}`.repeat(i + 1)],
      env: [["QUERY_STRING", `q=${"x".repeat(i * 7)}`], ["RUN", String(i)]],
      preopens: [],
      stdin: new TextEncoder().encode(`${i + 1}${"stdin".repeat(i)}`),
      maxOutput: MIB,
    });
    assertOk(
      !(result instanceof MoveToPool),
      `run ${i} moved to the pool: ${JSON.stringify(result)}`,
    );
    assertEquals(result.outcome.failure, undefined);
    const text = new TextDecoder().decode(result.stdout);
    assertOk(text.startsWith("Content-Type: text/plain\n\n"), text);
    sums.push(text.slice(26).trim());
  }
  return sums;
}

Deno.test("a reused instance starts every run on the memory of a fresh one, byte for byte", async () => {
  const variant = await inlineVariantOf("scribble.wat");
  assertOk(variant, "scribble.wat has no inline variant");
  assertEquals(variant.notReusable, undefined);
  assertOk(variant.tracksWrites, "scribble.wat does not track its writes");
  const sums = scribbleChecksums(new InlineRunner(variant), 6);
  assertEquals(new Set(sums).size, 1, `checksums differ between runs: ${sums.join(" ")}`);
  // The same with all of memory put back (modules that cannot track their writes).
  const whole = scribbleChecksums(new InlineRunner({ ...variant, tracksWrites: false }), 3);
  assertEquals(whole, [sums[0], sums[0], sums[0]]);
});

Deno.test("an instance whose start function called nobody is reused from its post-start state; one that called the host is not", async () => {
  const instantiations = new Map<string, number>();
  for (const [name, call] of [["silent", ""], ["calls", "(drop (call $yield))"]]) {
    const bytes = await watToWasm(`${name}.wat`, startCounter(call));
    const variant = await prepareInline(bytes, undefined);
    assertOk(typeof variant !== "string", String(variant));
    assertEquals([variant.hasStart, variant.notReusable], [true, undefined]);
    const runner = new InlineRunner(variant);
    const made = await countingInstances(() => {
      for (let i = 0; i < 3; i++) {
        const result = runner.run({
          entrypoint: "_start",
          args: [],
          env: [],
          preopens: [],
          stdin: new Uint8Array(),
          maxOutput: MIB,
        });
        assertOk(!(result instanceof MoveToPool), JSON.stringify(result));
        // Either way every run sees what a fresh instance sees: the start ran once.
        assertEquals(new TextDecoder().decode(result.stdout), STARTED_ONCE);
      }
    });
    instantiations.set(name, made);
  }
  assertEquals(Object.fromEntries(instantiations), { silent: 1, calls: 3 });
});
