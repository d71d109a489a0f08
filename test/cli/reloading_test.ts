/**
 * Hot reload end to end: SIGHUP and `--watch` switch the real server to a changed configuration
 * under load without a failed request; requests in flight finish on the configuration they
 * started with; a broken configuration or module leaves the one before serving.
 * @module
 */

import { assertEquals, assertIncludes, assertOk } from "../_assert.ts";
import { fixture, ROOT } from "../_fixtures.ts";
import { tempDir, writeConfig } from "../_temp.ts";
import { type ServerProcess, startServer } from "../server/_server.ts";

const HELLO = await Deno.readTextFile(`${ROOT}modules/hello.wat`);
/** hello.wat answering `text` (11 characters, as "Oh hi world", so the lengths still hold). */
function helloSaying(text: string): string {
  if (text.length !== 11) throw new Error("11 characters");
  return HELLO.replace("Oh hi world", text);
}

/** Waits until the server's stderr has said `text` `times` times. */
async function said(server: ServerProcess, text: string, times = 1): Promise<string> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const stderr = server.output().stderr;
    if (stderr.split(text).length - 1 >= times) return stderr;
    if (Date.now() > deadline) throw new Error(`the server never said '${text}':\n${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
}

Deno.test("reload: SIGHUP under load switches modules and routes with no failed request", async () => {
  const config = await writeConfig(
    `[[module]]\nroute = "/a"\nmodule = "a.wat"\n\n[[module]]\nroute = "/b"\nmodule = "b.wat"\n`,
    { "a.wat": helloSaying("Version one"), "b.wat": helloSaying("Route b one") },
  );
  const dir = config.slice(0, config.lastIndexOf("/"));
  const server = await startServer(["-c", config]);
  try {
    // Steady load on /a, bounded in time and count, from 8 clients.
    const answers = new Map<string, number>();
    const failures: string[] = [];
    let loading = true;
    const clients = Array.from({ length: 8 }, async () => {
      for (let i = 0; loading && i < 20_000; i++) {
        try {
          const { status, body } = await get(`${server.url}/a`);
          if (status !== 200) failures.push(`status ${status}`);
          answers.set(body, (answers.get(body) ?? 0) + 1);
        } catch (error) {
          failures.push((error as Error).message);
        }
      }
    });
    const stopLoad = setTimeout(() => (loading = false), 20_000);
    await new Promise((resolve) => setTimeout(resolve, 300));

    // /a's module changes, /b goes, /c comes.
    await Deno.writeTextFile(`${dir}/a.wat`, helloSaying("Version two"));
    await Deno.writeTextFile(`${dir}/c.wat`, helloSaying("Route c new"));
    await Deno.writeTextFile(
      config,
      `[[module]]\nroute = "/a"\nmodule = "a.wat"\n\n[[module]]\nroute = "/c"\nmodule = "c.wat"\n`,
    );
    server.child.kill("SIGHUP");
    await said(server, "reloaded in");
    await new Promise((resolve) => setTimeout(resolve, 300));
    loading = false;
    clearTimeout(stopLoad);
    await Promise.all(clients);

    assertEquals(failures, []);
    const total = [...answers.values()].reduce((a, b) => a + b, 0);
    assertOk(total > 100, `a steady load: ${total} requests`);
    assertEquals(
      [...answers.keys()].sort(),
      ["Oh hi world\n".replace("Oh hi world", "Version one"), "Version two\n"].sort(),
      "every answer is the old module's or the new one's",
    );
    assertOk((answers.get("Version two\n") ?? 0) > 0);
    assertEquals(await get(`${server.url}/a`), { status: 200, body: "Version two\n" });
    assertEquals(await get(`${server.url}/c`), { status: 200, body: "Route c new\n" });
    assertEquals((await get(`${server.url}/b`)).status, 404);
    assertIncludes(server.output().stderr, "2 routes, 2 modules (2 compiled anew)");

    // A broken configuration: logged with file and line, the one before keeps serving.
    await Deno.writeTextFile(config, `[[module]]\nroute = "/a"\nmodule = "a.wat"\n[[module\n`);
    server.child.kill("SIGHUP");
    let stderr = await said(server, "reload failed");
    assertIncludes(
      stderr,
      `reload failed, still serving the configuration loaded before: ${config}:4:`,
    );
    // A module that does not compile: named with its entry, nothing switched.
    await Deno.writeTextFile(`${dir}/d.wat`, "(module (func $oops (unknown)))");
    await Deno.writeTextFile(
      config,
      `[[module]]\nroute = "/a"\nmodule = "a.wat"\n\n[[module]]\nroute = "/d"\nmodule = "d.wat"\n`,
    );
    server.child.kill("SIGHUP");
    stderr = await said(server, "reload failed", 2);
    assertIncludes(stderr, `${config}:5: [[module]] #2 (route '/d'): `);
    assertEquals(await get(`${server.url}/a`), { status: 200, body: "Version two\n" });
    assertEquals(await get(`${server.url}/c`), { status: 200, body: "Route c new\n" });
    assertEquals((await get(`${server.url}/d`)).status, 404);
    assertEquals((await get(`${server.url}/healthz`)).status, 200);

    const metrics = (await get(`${server.url}/metrics`)).body;
    assertIncludes(metrics, "wagi_reloads_total 1\n");
    assertIncludes(metrics, "wagi_reload_failures_total 2\n");
    assertIncludes(metrics, "wagi_config_last_reload_successful 0\n");
  } finally {
    const status = await server.stop();
    assertEquals(status.code, 0, "the server is alive until stopped, and stops cleanly");
  }
});

Deno.test("reload: a request in flight finishes on the configuration it started with", async () => {
  const config = await writeConfig(
    `[[module]]\nroute = "/slow"\nmodule = "${fixture("slow.wasm")}"\n`,
    { "hello.wat": HELLO },
  );
  const server = await startServer(["-c", config]);
  try {
    const inFlight = fetch(`${server.url}/slow`).then((r) => r.text());
    await new Promise((resolve) => setTimeout(resolve, 200));
    await Deno.writeTextFile(config, `[[module]]\nroute = "/slow"\nmodule = "hello.wat"\n`);
    server.child.kill("SIGHUP");
    await said(server, "reloaded in");
    assertEquals(await get(`${server.url}/slow`), { status: 200, body: "Oh hi world\n" });
    assertEquals(await inFlight, "first\nsecond\n");
  } finally {
    await server.stop();
  }
});

Deno.test("reload: --watch reloads on a changed module file, and unchanged bytes are not compiled again", async () => {
  const config = await writeConfig(
    `[[module]]\nroute = "/"\nmodule = "m.wat"\n\n[[module]]\nroute = "/same"\nmodule = "same.wat"\n`,
    { "m.wat": helloSaying("Version one"), "same.wat": HELLO },
  );
  const dir = config.slice(0, config.lastIndexOf("/"));
  const server = await startServer(["-c", config, "--watch"]);
  try {
    // Replaced by a rename, as editors and build tools do.
    await Deno.writeTextFile(`${dir}/m.wat.new`, helloSaying("Version two"));
    await Deno.rename(`${dir}/m.wat.new`, `${dir}/m.wat`);
    await said(server, "reloaded in");
    assertEquals(await get(`${server.url}/`), { status: 200, body: "Version two\n" });
    assertIncludes(server.output().stderr, "(1 compiled anew)");
    // The same bytes written again: a reload, nothing compiled.
    await Deno.writeTextFile(`${dir}/same.wat`, HELLO);
    await said(server, "reloaded in", 2);
    assertIncludes(server.output().stderr, "(0 compiled anew)");
    assertEquals(await get(`${server.url}/same`), { status: 200, body: "Oh hi world\n" });
  } finally {
    await server.stop();
  }
});

Deno.test("reload: a configuration that would let a module write into the module cache is refused", async () => {
  const volume = await tempDir("wagi-volume-");
  const cache = `${volume}/cache`;
  const config = await writeConfig(`[[module]]\nroute = "/"\nmodule = "hello.wat"\n`, {
    "hello.wat": HELLO,
  });
  const server = await startServer(["-c", config, "--module-cache", cache]);
  try {
    await Deno.writeTextFile(
      config,
      `[[module]]\nroute = "/"\nmodule = "hello.wat"\nvolumes = { "/data" = "${volume}" }\n`,
    );
    server.child.kill("SIGHUP");
    const stderr = await said(server, "reload failed");
    assertIncludes(stderr, `could write into the module cache ${cache}`);
    assertEquals(await get(`${server.url}/`), { status: 200, body: "Oh hi world\n" });
  } finally {
    await server.stop();
  }
});
