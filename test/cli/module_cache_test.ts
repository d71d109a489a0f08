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

Deno.test("a module cache that a module's writable volume covers is not used, and the log says why", async () => {
  const home = await tempDir("wagi-exposed-");
  await Deno.mkdir(`${home}/data`);
  const config = `${home}/modules.toml`;
  await Deno.writeTextFile(
    config,
    `[[module]]\nroute = "/"\nmodule = "${ROOT}modules/hello.wasm"\n` +
      `volumes = { "/home" = "${home}" }\n` +
      `\n[[module]]\nroute = "/ro"\nmodule = "${ROOT}modules/hello.wasm"\n` +
      `volumes = { "/data" = "${home}/data:ro" }\n`,
  );
  // The cache does not exist yet: what matters is where it would be.
  const server = await startServer(["-c", config, "--module-cache", `${home}/cache/wagi`]);
  try {
    assertEquals(await (await fetch(`${server.url}/`)).text(), "hello world\n");
    const { stderr } = server.output();
    assertOk(
      stderr.includes(`module cache ${home}/cache/wagi is not used: route '/' (volume '/home'`),
      stderr,
    );
  } finally {
    await server.stop();
  }
  assertEquals(await Deno.stat(`${home}/cache`).then(() => "there", () => "absent"), "absent");
});

Deno.test("a read-only volume over the module cache leaves it in use", async () => {
  const home = await tempDir("wagi-covered-");
  const config = `${home}/modules.toml`;
  await Deno.writeTextFile(
    config,
    `[[module]]\nroute = "/"\nmodule = "${ROOT}modules/hello.wasm"\n` +
      `volumes = { "/home" = "${home}:ro" }\n`,
  );
  const server = await startServer(["-c", config, "--module-cache", `${home}/cache`]);
  try {
    assertEquals(await (await fetch(`${server.url}/`)).text(), "hello world\n");
    assertEquals(server.output().stderr.includes("is not used"), false);
  } finally {
    await server.stop();
  }
});
