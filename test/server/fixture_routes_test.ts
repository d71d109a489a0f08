import { assertEquals, assertIncludes } from "../_assert.ts";
import { fixture, ROOT } from "../_fixtures.ts";
import { spawnServer, startServer } from "./_server.ts";
import { tempDir, writeConfig as writeTempConfig } from "../_temp.ts";

/** A WAT module whose `_routes` prints one sub-route; its entrypoints print their name. */
const WAT_ROUTES = `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "/wat-sub sub\\n")
  (data (i32.const 200) "Content-Type: text/plain\\n\\nwat sub\\n")
  (data (i32.const 300) "Content-Type: text/plain\\n\\nwat main\\n")
  (func $print (param i32 i32)
    (i32.store (i32.const 0) (local.get 0))
    (i32.store (i32.const 4) (local.get 1))
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_routes") (call $print (i32.const 100) (i32.const 13)))
  (func (export "sub") (call $print (i32.const 200) (i32.const 34)))
  (func (export "_start") (call $print (i32.const 300) (i32.const 35))))
`;

/** A WAT module in WAGI's own example style: preview 0 (`wasi_unstable`) imports. */
const WAT_UNSTABLE = `(module
  (import "wasi_unstable" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory 1)
  (export "memory" (memory 0))
  (data (i32.const 8) "content-type: text/plain\\n\\nhello world\\n")
  (func $main (export "_start")
    (i32.store (i32.const 0) (i32.const 8))
    (i32.store (i32.const 4) (i32.const 38))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 100)))))
`;

async function writeConfig(): Promise<string> {
  return await writeTempConfig(
    `
[[module]]
route = "/multi/..."
module = "${fixture("routes.wasm")}"

[[module]]
route = "/wat"
module = "routes.wat"

[[module]]
route = "/unstable"
module = "unstable.wat"

[[module]]
route = "/exit0"
module = "${fixture("exits.wasm")}"
entrypoint = "exit_zero"

[[module]]
route = "/exit3"
module = "${fixture("exits.wasm")}"
entrypoint = "exit_three"

[[module]]
route = "/trap"
module = "${fixture("exits.wasm")}"
entrypoint = "trap"

[[module]]
route = "/missing-entrypoint"
module = "${fixture("exits.wasm")}"
entrypoint = "nope"

[[module]]
route = "/volume"
module = "${fixture("volume.wasm")}"
volumes = { "/data" = "${ROOT}test/fixtures/data" }

[[module]]
route = "/cgi"
module = "${fixture("cat.wasm")}"

[[module]]
route = "/argv"
module = "${ROOT}modules/env.wasm"
argv = "\${SCRIPT_NAME} fixed \${ARGS}"
environment = { FROM_MODULE = "yes", SHARED = "module" }
`,
    { "routes.wat": WAT_ROUTES, "unstable.wat": WAT_UNSTABLE },
    "wagi-fixtures-",
  );
}

Deno.test("WAGI behaviours through the real server with test-only modules", async (t) => {
  const config = await writeConfig();
  const server = await startServer(["-c", config, "-e", "SHARED=flag", "-e", "GLOBAL=1"]);
  const get = async (path: string, init?: RequestInit) => {
    const response = await fetch(`${server.url}${path}`, init);
    return { status: response.status, headers: response.headers, body: await response.text() };
  };
  try {
    await t.step(
      "_routes sub-routes come before their parent, with their entrypoints",
      async () => {
        assertEquals((await get("/multi/one")).body, "one /multi/one\n");
        assertEquals((await get("/multi/two/deeper")).body, "two /multi/two/...\n");
        assertEquals((await get("/multi/two")).body, "two /multi/two/...\n");
        assertEquals((await get("/multi/one/x")).body, "main /multi/...\n", "sub-route is exact");
        assertEquals((await get("/multi/")).body, "main /multi/...\n");
      },
    );

    await t.step("a WAT module's _routes work too, joined to an exact parent", async () => {
      assertEquals((await get("/wat/wat-sub")).body, "wat sub\n");
      assertEquals((await get("/wat")).body, "wat main\n");
    });

    await t.step("a wasi_unstable (preview 0) module works", async () => {
      const response = await get("/unstable");
      assertEquals([response.status, response.body], [200, "hello world\n"]);
      assertEquals(response.headers.get("content-type"), "text/plain");
    });

    await t.step("proc_exit(0) is a normal response", async () => {
      const response = await get("/exit0");
      assertEquals([response.status, response.body], [200, "exited with 0\n"]);
    });

    await t.step("a non-zero exit, a trap, a missing entrypoint are 500s", async () => {
      for (const path of ["/exit3", "/trap", "/missing-entrypoint"]) {
        assertEquals((await get(path)).status, 500, path);
      }
      const { stderr } = server.output();
      assertIncludes(stderr, "exited with code 3");
      assertIncludes(stderr, "trap");
      assertIncludes(stderr, "module has no exported function 'nope'");
    });

    await t.step("a volume is readable and the module cannot leave it", async () => {
      const response = await get("/volume");
      assertEquals(response.status, 200);
      assertIncludes(response.body, "read: hello from the volume\n");
      assertIncludes(response.body, "entry: greeting.txt\n");
      assertIncludes(response.body, "open /data/../volume.c: Operation not permitted\n");
      assertIncludes(response.body, "open /etc/passwd: Capabilities insufficient\n");
    });

    await t.step(
      "module output is parsed as CGI: Status beats Location, cookies kept",
      async () => {
        const post = (output: string) =>
          fetch(`${server.url}/cgi`, { method: "POST", body: output, redirect: "manual" });
        const redirect = await post("Location: /elsewhere\n\n");
        assertEquals(redirect.status, 302);
        assertEquals(redirect.headers.get("location"), "/elsewhere");
        await redirect.body?.cancel();
        const explicit = await post("Location: /x\r\nStatus: 303 See Other\r\n\r\n");
        assertEquals(explicit.status, 303);
        await explicit.body?.cancel();
        const cookies = await post(
          "Content-Type: text/plain\nSet-Cookie: a=1\nSet-Cookie: b=2\n\nok",
        );
        assertEquals(cookies.headers.getSetCookie(), ["a=1", "b=2"]);
        assertEquals(await cookies.text(), "ok");
        const none = await post("just a body");
        assertEquals(none.status, 500);
        assertEquals(
          await none.text(),
          "Exactly one of 'location' or 'content-type' must be specified",
        );
        const invalid = await post("Content-Type: text/plain\nBad Header: x\n\n");
        assertEquals(invalid.status, 500);
        await invalid.body?.cancel();
        const badStatus = await post("Status: abc\nContent-Type: text/plain\n\n");
        assertEquals(badStatus.status, 502);
        await badStatus.body?.cancel();
      },
    );

    await t.step("argv templates and the environment build order", async () => {
      const { body } = await get("/argv?a=1&b=2");
      assertIncludes(body, "0 = /argv\n1 = fixed\n2 = a=1\n3 = b=2\n### env");
      assertIncludes(body, "FROM_MODULE = yes\n");
      assertIncludes(body, "GLOBAL = 1\n");
      assertIncludes(body, "SHARED = module\n");
    });

    await t.step("the server still answers after all those failures", async () => {
      assertEquals((await get("/multi/one")).status, 200);
    });
  } finally {
    assertEquals((await server.stop()).code, 0);
  }
});

Deno.test("relative -c and module paths resolve against INIT_CWD, as under deno task", async () => {
  const dir = await tempDir("wagi-initcwd-");
  await Deno.copyFile(`${ROOT}modules/hello.wasm`, `${dir}/hello.wasm`);
  await Deno.writeTextFile(`${dir}/wagi.toml`, `[[module]]\nroute = "/"\nmodule = "hello.wasm"\n`);
  const server = await startServer(["-c", "wagi.toml"], {
    env: { INIT_CWD: dir },
    cwd: ROOT,
  });
  try {
    assertEquals(await (await fetch(server.url)).text(), "hello world\n");
  } finally {
    await server.stop();
  }
});

Deno.test("startup errors name the problem and exit non-zero", async (t) => {
  const dir = await tempDir("wagi-bad-");
  const cases: [string, string, string][] = [
    ["a missing module", `[[module]]\nroute = "/"\nmodule = "gone.wasm"\n`, "gone.wasm"],
    [
      "an import the host does not provide",
      `[[module]]\nroute = "/h"\nmodule = "http.wat"\n`,
      "'wasi_experimental_http.bogus', which this host does not provide",
    ],
    ["invalid TOML", `[[module]\n`, "invalid TOML"],
    [
      "a WASI 0.2 component of no world served",
      `[[module]]\nroute = "/c"\nmodule = "component.wasm"\n`,
      `(route '/c'): ${dir}/component.wasm: a component must export ` +
      "wasi:http/incoming-handler@0.2.x or wasi:cli/run@0.2.x; this one exports nothing",
    ],
    [
      "a _routes that never answers",
      `[[module]]\nroute = "/r/..."\nmodule = "loop.wat"\ntimeout = 0.5\n`,
      "(route '/r/...'): loop.wat: _routes did not answer within its timeout of 500 ms",
    ],
  ];
  await Deno.writeTextFile(
    `${dir}/http.wat`,
    `(module (import "wasi_experimental_http" "bogus" (func)))`,
  );
  await Deno.writeFile(
    `${dir}/component.wasm`,
    new Uint8Array([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0]),
  );
  await Deno.writeTextFile(
    `${dir}/loop.wat`,
    `(module (func (export "_start")) (func (export "_routes") (loop $l (br $l))))`,
  );
  for (const [name, text, expected] of cases) {
    await t.step(name, async () => {
      await Deno.writeTextFile(`${dir}/modules.toml`, text);
      const result = await spawnServer(["-c", `${dir}/modules.toml`]);
      if (!("code" in result)) {
        await result.stop();
        throw new Error("the server started");
      }
      assertEquals(result.code, 1);
      assertIncludes(result.stderr, `${dir}/modules.toml`);
      assertIncludes(result.stderr, expected);
    });
  }
  await t.step("a busy port and a missing TLS file are clear errors, exit 1", async () => {
    await Deno.writeTextFile(
      `${dir}/modules.toml`,
      `[[module]]\nroute = "/"\nmodule = "${ROOT}modules/hello.wasm"\n`,
    );
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (taken.addr as Deno.NetAddr).port;
    try {
      const busy = await spawnServer(["-c", `${dir}/modules.toml`, "-l", `127.0.0.1:${port}`]);
      assertEquals("code" in busy && busy.code, 1);
      assertIncludes((busy as { stderr: string }).stderr, `cannot listen on 127.0.0.1:${port}`);
    } finally {
      taken.close();
    }
    const tls = await spawnServer([
      ...["-c", `${dir}/modules.toml`, "--tls-cert", `${dir}/no.pem`, "--tls-key", `${dir}/no.key`],
    ]);
    assertEquals("code" in tls && tls.code, 1);
    assertIncludes((tls as { stderr: string }).stderr, `--tls-cert '${dir}/no.pem'`);
  });
  await t.step("an invalid --listen is a usage error", async () => {
    await Deno.writeTextFile(
      `${dir}/modules.toml`,
      `[[module]]\nroute = "/"\nmodule = "http.wat"\n`,
    );
    const result = await spawnServer(["-c", `${dir}/modules.toml`, "-l", "nonsense"]);
    assertEquals("code" in result && result.code, 2);
    assertIncludes((result as { stderr: string }).stderr, "--listen 'nonsense'");
  });
});
