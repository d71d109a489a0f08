/**
 * `oci:` modules end to end: pushed with `wagi-deno push` to a real registry, served by the real
 * server, kept in the module cache across restarts, and every way a pull fails said at start
 * with the file, line, route and reference.
 * @module
 */

import { assertEquals, assertIncludes, assertOk } from "../_assert.ts";
import { fixture, ROOT } from "../_fixtures.ts";
import { dockerConfigWith, NO_REGISTRY, REGISTRY_USER, startRegistry } from "../_registry.ts";
import { tempDir, writeConfig } from "../_temp.ts";
import { spawnServer, startServer } from "../server/_server.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: NO_REGISTRY !== undefined, fn });

/** Runs `wagi-deno push MODULE REF`; returns the pinned reference it printed. */
async function push(module: string, ref: string, env: Record<string, string> = {}) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${ROOT}src/main.ts`, "push", module, ref],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  return { code: output.code, stdout, stderr, pinned: stdout.match(/^pushed (\S+)/)?.[1] };
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
}

test("oci: pushed modules are served, kept in the module cache, and a restart does not pull them again", async () => {
  const registry = await startRegistry();
  const cache = await tempDir("wagi-oci-cache-");
  try {
    const hello = await push(`${ROOT}modules/hello.wat`, `oci:${registry.host}/wagi/hello:1`);
    assertEquals(hello.code, 0, hello.stderr);
    const exits = await push(fixture("exits.wasm"), `oci:${registry.host}/wagi/exits:1`);
    assertOk(exits.pinned?.includes("@sha256:"), exits.stdout);
    const config = await writeConfig(
      `[[module]]\nroute = "/hello"\nmodule = "oci:${registry.host}/wagi/hello:1"\n\n` +
        `[[module]]\nroute = "/exits"\nmodule = "${exits.pinned}"\nargv = "\${SCRIPT_NAME} 0"\n`,
    );
    const args = ["-c", config, "--module-cache", cache];

    let server = await startServer(args);
    assertEquals(await get(`${server.url}/hello`), { status: 200, body: "Oh hi world\n" });
    assertEquals((await get(`${server.url}/exits`)).status, 200);
    await server.stop();
    assertIncludes(
      server.output().stderr,
      `oci:${registry.host}/wagi/hello:1: pulled module sha256:`,
    );

    // A restart: the tag is asked for again, the module is not downloaded; the digest
    // reference is not even asked for.
    server = await startServer(args);
    assertEquals(await get(`${server.url}/hello`), { status: 200, body: "Oh hi world\n" });
    await server.stop();
    const restart = server.output().stderr;
    assertIncludes(restart, "wagi/hello:1: module sha256:");
    assertIncludes(restart, "from the module cache (the registry still names it)");
    assertIncludes(restart, `${exits.pinned}: module sha256:`);
    assertEquals(restart.includes("pulled module"), false, restart);

    // The tag moves: a reload resolves it again and serves what it names now.
    server = await startServer(args);
    await push(fixture("exits.wasm"), `oci:${registry.host}/wagi/hello:1`);
    server.child.kill("SIGHUP");
    for (let i = 0; i < 300 && !server.output().stderr.includes("reloaded in"); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const moved = await get(`${server.url}/hello`);
    await server.stop();
    // It now names the module /exits serves: one module for both routes, nothing compiled.
    assertIncludes(server.output().stderr, "2 routes, 1 modules (0 compiled anew)");
    assertOk(moved.body !== "Oh hi world\n", "the moved tag's module is served");

    // The registry goes away: what was pulled is served, and the log says so.
    await registry.stop();
    server = await startServer(args);
    assertEquals((await get(`${server.url}/exits`)).status, 200);
    await server.stop();
    assertIncludes(server.output().stderr, `cannot reach http://${registry.host}`);
    assertIncludes(server.output().stderr, "from the module cache");
    server = await startServer([...args, "--offline"]);
    assertEquals((await get(`${server.url}/hello`)).status, 200);
    await server.stop();
    assertEquals(server.output().stderr.includes("cannot reach"), false, "--offline asks nobody");
  } finally {
    await registry.stop();
  }
});

test("oci: a damaged module in the cache is pulled again, never served", async () => {
  const registry = await startRegistry();
  const cache = await tempDir("wagi-oci-cache-");
  try {
    const pushed = await push(`${ROOT}modules/hello.wat`, `oci:${registry.host}/wagi/hello:1`);
    const config = await writeConfig(
      `[[module]]\nroute = "/"\nmodule = "${pushed.pinned}"\n`,
    );
    let server = await startServer(["-c", config, "--module-cache", cache]);
    await server.stop();
    const blobs = `${cache}/oci/blobs/sha256`;
    const [blob] = [...Deno.readDirSync(blobs)];
    await Deno.writeTextFile(`${blobs}/${blob.name}`, "(module)");
    server = await startServer(["-c", config, "--module-cache", cache]);
    assertEquals(await get(`${server.url}/`), { status: 200, body: "Oh hi world\n" });
    await server.stop();
    assertIncludes(server.output().stderr, "pulled module");
  } finally {
    await registry.stop();
  }
});

test("oci: each failed pull stops the start with the file, line, route, reference and reason", async () => {
  const registry = await startRegistry({ auth: "basic" });
  const cache = await tempDir("wagi-oci-cache-");
  try {
    const credentials = await dockerConfigWith(registry.host, REGISTRY_USER);
    const pushed = await push(`${ROOT}modules/hello.wat`, `oci:${registry.host}/wagi/hello:1`, {
      DOCKER_CONFIG: credentials,
    });
    assertEquals(pushed.code, 0, pushed.stderr);
    const failures: [string, string, Record<string, string>?][] = [
      [`oci:${registry.host}/wagi/nothing:1`, "not found (no such repository or tag)", {
        DOCKER_CONFIG: credentials,
      }],
      [`oci:${registry.host}/wagi/hello:1`, "asks for a user name and password"],
      ["oci:no-such-host.invalid/wagi/hello:1", "cannot reach https://no-such-host.invalid"],
      [`oci:${registry.host}/wagi/hello:1`, "access refused to user 'wagi'", {
        DOCKER_CONFIG: await dockerConfigWith(registry.host, { username: "wagi", password: "x" }),
      }],
    ];
    for (const [module, reason, env] of failures) {
      const config = await writeConfig(
        `[[module]]\nroute = "/ok"\nmodule = "${ROOT}modules/hello.wat"\n\n` +
          `[[module]]\nroute = "/pulled"\nmodule = "${module}"\n`,
      );
      const result = await spawnServer(["-c", config, "--module-cache", cache], { env });
      assertOk("code" in result, `${module} must not start`);
      assertEquals(result.code, 1);
      assertIncludes(
        result.stderr,
        `${config}:5: [[module]] #2 (route '/pulled'): module '${module}': `,
      );
      assertIncludes(result.stderr, reason);
    }
    // Offline, with nothing pulled before.
    const config = await writeConfig(
      `[[module]]\nroute = "/"\nmodule = "oci:${registry.host}/wagi/hello:1"\n`,
    );
    const offline = await spawnServer(["-c", config, "--module-cache", cache, "--offline"]);
    assertOk("code" in offline);
    assertIncludes(offline.stderr, "not in the module cache, and --offline forbids pulling it");
    // With the right credentials it serves.
    const server = await startServer(["-c", config, "--module-cache", cache], {
      env: { DOCKER_CONFIG: credentials },
    });
    assertEquals(await get(`${server.url}/`), { status: 200, body: "Oh hi world\n" });
    await server.stop();
  } finally {
    await registry.stop();
  }
});
