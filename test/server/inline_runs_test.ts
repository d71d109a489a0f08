import { assertEquals, assertIncludes } from "../_assert.ts";
import { startServer } from "./_server.ts";

Deno.test("many requests at once each get their own output, bodies included", async () => {
  const server = await startServer(["-c", "modules/modules.toml", "--workers", "1"]);
  try {
    // Modules move to the server's thread shortly after start: wait for it, then test there.
    while (!server.output().stderr.includes("modules ready to run on the server's thread")) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Runs on the server's thread share one output buffer: every response must still be its own.
    const answers = await Promise.all(Array.from({ length: 200 }, async (_, i) => {
      const response = await fetch(`${server.url}/env/item?n=${i}`, {
        method: "POST",
        body: `body of ${i}`,
      });
      return [i, response.status, await response.text()] as const;
    }));
    for (const [i, status, body] of answers) {
      assertEquals(status, 200);
      assertIncludes(body, `QUERY_STRING = n=${i}\n`);
      assertIncludes(body, `CONTENT_LENGTH = ${`body of ${i}`.length}\n`);
      assertIncludes(body, `### body\nbody of ${i}`);
    }
  } finally {
    await server.stop();
  }
});
