import { assertEquals, assertIncludes, assertOk } from "../_assert.ts";
import { fixture, ROOT } from "../_fixtures.ts";
import { startServer } from "../server/_server.ts";
import { allowList } from "../../src/outbound_http/allowed_hosts.ts";
import { writeConfig as writeTempConfig } from "../_temp.ts";

/** A real upstream on loopback: the only kind of network there is here. */
function startUpstream() {
  const server: Deno.HttpServer<Deno.NetAddr> = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen() {},
  }, async (request): Promise<Response> => {
    const { pathname } = new URL(request.url);
    const port = server.addr.port;
    switch (pathname) {
      case "/ok":
        return new Response("0123456789abcdefghij", {
          headers: { "content-type": "text/plain", "x-upstream": "hello" },
        });
      case "/redirect-out":
        return Response.redirect(`http://localhost:${port}/ok`, 302);
      case "/redirect-in":
        return new Response(null, { status: 302, headers: { location: "/ok" } });
      case "/echo":
        return new Response(await request.text());
      case "/slow":
        await new Promise((resolve) => setTimeout(resolve, 2000));
        return new Response("slow");
      default:
        return new Response("nope", { status: 404 });
    }
  });
  return server;
}

async function writeConfig(port: number): Promise<string> {
  return await writeTempConfig(
    `
[[module]]
route = "/client"
module = "${fixture("http_client.wasm")}"
allowed_hosts = ["http://127.0.0.1:1/ignored-path"]
http_max_concurrency = 2
environment = { UPSTREAM = "http://127.0.0.1:${port}", ELSEWHERE = "http://localhost:${port}" }

[[module]]
route = "/example"
module = "${ROOT}modules/http_example.wasm"
allowed_hosts = ["http://127.0.0.1"]

[[module]]
route = "/denied"
module = "${ROOT}modules/http_example.wasm"

[[module]]
route = "/hello"
module = "${ROOT}modules/hello.wasm"
`,
    {},
    "wagi-http-",
  );
}

Deno.test("allowed_hosts: absent denies all, hosts compare by name only, allow-all allows all", () => {
  const url = new URL("https://api.example.com:8443/x?y");
  assertEquals(allowList(undefined).allows(url), false);
  assertEquals(allowList([]).allows(url), false);
  assertEquals(allowList(["http://API.example.com/other"]).allows(url), true);
  assertEquals(allowList(["https://example.com"]).allows(url), false);
  assertEquals(allowList(["insecure:allow-all"]).allows(url), true);
});

Deno.test("outbound HTTP through the real server: every import and error code", async () => {
  const upstream = startUpstream();
  const server = await startServer(["-c", await writeConfig(upstream.addr.port)]);
  try {
    const response = await fetch(`${server.url}/client`);
    const body = await response.text();
    assertEquals(response.status, 200, body);
    const expected = [
      "req: 0 200",
      "header_get: 0 text/plain",
      "header_get small buffer: 4",
      "header_get missing: 5",
      "headers_get_all small buffer: 4",
      "headers_get_all: 0 1",
      "body: 20 bytes in 3 reads: 0123456789abcdefghij",
      "close: 0",
      "close again: 1",
      "body_read closed: 1",
      "disallowed host: 7",
      "redirect to disallowed host: 7",
      "redirect within the host: 0 200",
      "invalid url: 10",
      "invalid method: 8",
      "too many sessions: 13",
      "post: 0 200 ping",
    ];
    assertEquals(body.trim().split("\n"), expected);
  } finally {
    await server.stop();
    await upstream.shutdown();
  }
});

Deno.test("the bundled example reports status and length; without allowed_hosts it is refused", async () => {
  const upstream = startUpstream();
  const server = await startServer(["-c", await writeConfig(upstream.addr.port)]);
  try {
    const target = `http://127.0.0.1:${upstream.addr.port}/ok`;
    const ok = await fetch(`${server.url}/example?url=${target}`);
    assertEquals(await ok.text(), "status: 200\nbody length: 20\n");
    const denied = await fetch(`${server.url}/denied?url=${target}`);
    assertEquals(denied.status, 502);
    assertIncludes(await denied.text(), "failed with error 7");
  } finally {
    await server.stop();
    await upstream.shutdown();
  }
});

Deno.test("a 2 s upstream does not delay 50 other requests", async () => {
  const upstream = startUpstream();
  const server = await startServer(["-c", await writeConfig(upstream.addr.port)]);
  try {
    const started = performance.now();
    let slowDone = false;
    const slow = fetch(`${server.url}/example?url=http://127.0.0.1:${upstream.addr.port}/slow`)
      .then(async (r) => ({ body: await r.text(), at: performance.now() - started }))
      .finally(() => (slowDone = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const others = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const response = await fetch(`${server.url}/hello`);
        return await response.text();
      }),
    );
    assertOk(!slowDone, "the 50 others waited for the slow one");
    for (const other of others) assertEquals(other, "hello world\n");
    const done = await slow;
    assertEquals(done.body, "status: 200\nbody length: 4\n");
    assertOk(done.at >= 2000, "the slow one really waited");
  } finally {
    await server.stop();
    await upstream.shutdown();
  }
});
