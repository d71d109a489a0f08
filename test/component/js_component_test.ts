/**
 * A JavaScript component (modules/js_component.js, built from npm with componentize-js into a
 * component embedding StarlingMonkey) through the real server: answers, fresh state for every
 * request on an instance of ~9 MiB put back chunk by chunk, and a stop at its timeout.
 * @module
 */

import { assertEquals, assertOk as assert } from "../_assert.ts";
import { tempDir, writeConfig } from "../_temp.ts";
import { startServer } from "../server/_server.ts";
import { IDLE, idleLoad } from "../_proc.ts";
import { buildJsComponent } from "../_js_component.ts";

Deno.test("a JavaScript component answers, echoes, starts every request fresh and is stopped at its timeout", async (t) => {
  const component = `${await tempDir()}/js_component.wasm`;
  await buildJsComponent(component);
  // One server isolate: its runner on the server's thread is ready by the looping run.
  const server = await startServer([
    "--servers",
    "1",
    "-c",
    await writeConfig(`
[[module]]
route = "/js/..."
module = "${component}"

[[module]]
route = "/short/..."
module = "${component}"
timeout = 1
`),
  ]);
  const { url } = server;
  try {
    await t.step(
      "GET sees the method and the raw path; a POST body comes back byte for byte",
      async () => {
        const hello = await fetch(`${url}/js/a%20b?x=1`);
        assertEquals(hello.headers.get("content-type"), "text/plain");
        assertEquals(await hello.text(), "Hello from JavaScript\nGET /js/a%20b?x=1\n");
        const body = crypto.getRandomValues(new Uint8Array(60_000));
        const echoed = await fetch(`${url}/js/echo`, { method: "POST", body });
        assertEquals(new Uint8Array(await echoed.arrayBuffer()), body);
      },
    );
    await t.step(
      "a global counter is 1 in every request, one after another and at once",
      async () => {
        for (let i = 0; i < 10; i++) {
          assertEquals(await (await fetch(`${url}/js/?count`)).text(), "1\n");
        }
        const answers = await Promise.all(
          Array.from({ length: 20 }, () => fetch(`${url}/js/?count`).then((r) => r.text())),
        );
        assertEquals(new Set(answers), new Set(["1\n"]));
      },
    );
    await t.step(
      "a handler that loops is stopped at its timeout, and the server is idle again",
      async () => {
        const started = performance.now();
        const looped = await fetch(`${url}/short/?loop`);
        assertEquals(looped.status, 504);
        await looped.body?.cancel();
        assert(performance.now() - started < 2500, "answered late");
        const load = await idleLoad(server.child.pid, 1500);
        assert(load < IDLE, `the server still uses ${load} of a core`);
        // It serves on (on the route without the 1 s timeout: a new engine takes its time).
        assertEquals(await (await fetch(`${url}/js/?count`)).text(), "1\n");
      },
    );
    await t.step("its runs are tried on the server's thread first", () => {
      const log = server.output().stdout + server.output().stderr;
      // The looping run was tried there first, then redone in the pool.
      assert(/\/short\/\.\.\.: moved from the server's thread .*ran longer than/.test(log), log);
    });
  } finally {
    await server.stop();
  }
});
