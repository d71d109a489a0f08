import { assertEquals, assertIncludes } from "../_assert.ts";
import { startServer } from "./_server.ts";
import { tempDir } from "../_temp.ts";

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The file's text once it has `lines` lines, waiting up to 2 s for it. */
async function eventually(file: string, lines: number): Promise<string> {
  let text = "";
  for (let waited = 0; waited < 2000; waited += 20) {
    text = await Deno.readTextFile(file).catch(() => "");
    if (text.split("\n").length - 1 >= lines) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return text;
}

Deno.test("the bundled modules serve the demo routes", async (t) => {
  const logDir = await tempDir("wagi-logs-");
  const server = await startServer(["-c", "modules/modules.toml", "--log-dir", logDir]);
  try {
    await t.step("the route table is printed before Ready", () => {
      const { stdout } = server.output();
      for (const route of ["/healthz", "/", "/hello/...", "/error", "/env/...", "/log"]) {
        assertIncludes(stdout, `  ${route} `);
      }
      assertIncludes(stdout, "Ready: serving on http://127.0.0.1:");
    });

    await t.step("GET / is the WAT greeting as HTML", async () => {
      const response = await fetch(`${server.url}/`);
      assertEquals(response.status, 200);
      assertEquals(response.headers.get("content-type"), "text/html;charset=UTF-8");
      assertEquals(await response.text(), "Oh hi world\n");
    });

    await t.step("GET /hello and /hello/anything are the C greeting", async () => {
      for (const path of ["/hello", "/hello/anything"]) {
        const response = await fetch(`${server.url}${path}`);
        assertEquals(response.status, 200);
        assertEquals(response.headers.get("content-type"), "text/plain");
        assertEquals(await response.text(), "hello world\n");
      }
    });

    await t.step("GET /error is the module's own 404", async () => {
      const response = await fetch(`${server.url}/error`);
      assertEquals(response.status, 404);
      assertEquals(await response.text(), "Not Found\n");
    });

    await t.step("an unmatched path is 404 and /healthz is OK", async () => {
      const missing = await fetch(`${server.url}/nowhere`);
      assertEquals(missing.status, 404);
      await missing.body?.cancel();
      const health = await fetch(`${server.url}/healthz`);
      assertEquals([health.status, await health.text()], [200, "OK"]);
    });

    await t.step("GET /env/... shows argv and the CGI environment", async () => {
      const response = await fetch(`${server.url}/env/a%20b?x=1&y=2`, {
        headers: { "x-test": "yes" },
      });
      const body = await response.text();
      assertEquals(response.status, 200);
      for (
        const line of [
          "0 = /env/a%20b",
          "1 = x=1",
          "2 = y=2",
          "GATEWAY_INTERFACE = CGI/1.1",
          "HTTP_X_TEST = yes",
          "PATH_INFO = /a b",
          "QUERY_STRING = x=1&y=2",
          "REQUEST_METHOD = GET",
          "SCRIPT_NAME = /env",
          "SERVER_SOFTWARE = WAGI/1",
          "X_MATCHED_ROUTE = /env/...",
          "X_RAW_PATH_INFO = /a%20b",
          "REMOTE_ADDR = 127.0.0.1",
        ]
      ) assertIncludes(body, `${line}\n`);
      assertEquals(body.includes("PATH = "), false, "the host environment does not leak in");
    });

    await t.step("a POST body reaches the module's stdin byte for byte", async () => {
      const payload = new Uint8Array([0, 1, 2, 255, 13, 10, 0x41]);
      const response = await fetch(`${server.url}/env/echo`, {
        method: "POST",
        body: payload,
        headers: { "content-type": "application/octet-stream" },
      });
      const body = new Uint8Array(await response.arrayBuffer());
      const text = new TextDecoder().decode(body);
      assertIncludes(text, "CONTENT_LENGTH = 7\n");
      assertIncludes(text, "CONTENT_TYPE = application/octet-stream\n");
      assertEquals(body.subarray(body.length - payload.length), payload);
    });

    await t.step(
      "GET /log appends its stderr to <log dir>/<sha256 of route>/module.stderr",
      async () => {
        const response = await fetch(`${server.url}/log`);
        assertEquals(response.status, 200);
        await response.text();
        const file = `${logDir}/${await sha256Hex("/log")}/module.stderr`;
        // The log is written as the module ends, which may be just after the response.
        assertEquals(await eventually(file, 1), "log module: hello from stderr\n");
        await (await fetch(`${server.url}/log`)).text();
        assertEquals(
          await eventually(file, 2),
          "log module: hello from stderr\n".repeat(2),
          "appended, not replaced",
        );
      },
    );
  } finally {
    assertEquals((await server.stop()).code, 0);
  }
});
