import { assertEquals, assertOk } from "../_assert.ts";
import { startServer } from "../server/_server.ts";
import { tempDir } from "../_temp.ts";
import { ROOT } from "../_fixtures.ts";

/** Starts the bundled example config on `cache`; returns what its module cache line said. */
async function startOn(cache: string): Promise<{ read: number; made: number; hello: string }> {
  const server = await startServer([
    "-c",
    `${ROOT}modules/modules.toml`,
    "--module-cache",
    cache,
  ]);
  try {
    // "/" is hello.wat: WebAssembly text.
    const hello = await (await fetch(`${server.url}/`)).text();
    let line: RegExpMatchArray | null = null;
    while (!(line = server.output().stderr.match(/(\d+) derived modules read back, (\d+) made/))) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return { read: Number(line[1]), made: Number(line[2]), hello };
  } finally {
    await server.stop();
  }
}

Deno.test("a second start on a warm module cache compiles no WebAssembly text and rewrites nothing", async () => {
  const cache = await tempDir("wagi-warm-cache-");
  const first = await startOn(cache);
  assertEquals([first.hello, first.read], ["Oh hi world\n", 0]);
  // The text module compiled, and each module made preemptible and prepared for this thread.
  assertOk(first.made >= 1 + 2 * 5, `made ${first.made}`);
  const second = await startOn(cache);
  assertEquals(second, { read: first.made, made: 0, hello: "Oh hi world\n" });
});
