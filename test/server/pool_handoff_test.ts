/**
 * The pool's two ways of handing a run to a worker (its mailbox, or a message with rings of the
 * run's own), end to end: many requests at once, each answered with its own bytes.
 * @module
 */

import { assertEquals, assertIncludes } from "../_assert.ts";
import { fixture, ROOT } from "../_fixtures.ts";
import { writeConfig } from "../_temp.ts";
import { startServer } from "./_server.ts";

const config = await writeConfig(`
[[module]]
route = "/env/..."
module = "${ROOT}modules/env.wasm"

[[module]]
route = "/bulk"
module = "${fixture("bulk.wat")}"
`);

Deno.test("--pool-only: requests at once each get their own answer, whole, streamed or echoed", async () => {
  // Two workers for dozens of requests: each worker serves one run after another.
  const server = await startServer([
    "-c",
    config,
    "--pool-only",
    "--workers",
    "2",
    "--max-concurrency",
    "4",
  ]);
  try {
    const gets = Array.from({ length: 60 }, async (_, i) => {
      const body = await (await fetch(`${server.url}/env/get?id=${i}`)).text();
      // Its own query, and no other request's.
      assertIncludes(body, `QUERY_STRING = id=${i}\n`);
      assertEquals([...new Set(body.match(/id=\d+/g))], [`id=${i}`]);
    });
    const posts = Array.from({ length: 20 }, async (_, i) => {
      const sent = `post ${i} `.repeat(100 + i * 300);
      const response = await fetch(`${server.url}/env/post`, { method: "POST", body: sent });
      const body = await response.text();
      assertEquals(body.slice(body.indexOf("### body\n") + 9), sent);
    });
    const bulks = Array.from({ length: 4 }, async () => {
      const body = await (await fetch(`${server.url}/bulk`)).text();
      assertEquals([body.length, body.replaceAll("x", "")], [1_000_000, ""]);
    });
    await Promise.all([...gets, ...posts, ...bulks]);
    // And the server is still there for more.
    assertIncludes(await (await fetch(`${server.url}/env/after?id=last`)).text(), "id=last");
  } finally {
    assertEquals((await server.stop()).code, 0);
  }
});
