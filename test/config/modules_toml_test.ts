import { assertEquals, assertIncludes, assertThrows } from "../_assert.ts";
import { ConfigError, parseModulesToml } from "../../src/config/modules_toml.ts";
import { tempDirSync } from "../_temp.ts";

/** A scratch directory with a config dir holding a module and a volume dir. */
function scratch() {
  const root = tempDirSync("wagi-config-");
  Deno.mkdirSync(`${root}/conf/data`, { recursive: true });
  Deno.mkdirSync(`${root}/start`);
  Deno.writeFileSync(`${root}/conf/m.wasm`, new Uint8Array([0, 0x61, 0x73, 0x6d]));
  Deno.writeFileSync(`${root}/start/m.wasm`, new Uint8Array([0, 0x61, 0x73, 0x6d]));
  Deno.writeFileSync(`${root}/conf/only-here.wasm`, new Uint8Array([0, 0x61, 0x73, 0x6d]));
  return { root, file: `${root}/conf/modules.toml`, start: `${root}/start` };
}

const parse = (text: string) => {
  const s = scratch();
  return { ...s, config: parseModulesToml(text, s.file, s.start) };
};

const failure = (text: string) => {
  const s = scratch();
  let message = "";
  assertThrows(() => parseModulesToml(text, s.file, s.start), ConfigError, "");
  try {
    parseModulesToml(text, s.file, s.start);
  } catch (error) {
    message = (error as Error).message;
  }
  return { ...s, message };
};

Deno.test("a full entry is read with defaults and resolved paths", () => {
  const { config, root } = parse(`
[[module]]
route = "/a/..."
module = "m.wasm"
entrypoint = "run"
argv = "\${SCRIPT_NAME} \${ARGS}"
volumes = { "/data" = "data" }
environment = { K = "v" }
allowed_hosts = ["https://example.com"]
http_max_concurrency = 2

[[module]]
route = "/b"
module = "only-here.wasm"
`);
  const [a, b] = config.entries;
  assertEquals(a.route, "/a/...");
  assertEquals(a.modulePath, `${root}/start/m.wasm`, "relative to the start directory first");
  assertEquals(a.entrypoint, "run");
  assertEquals(a.volumes, [{ guestPath: "/data", hostPath: `${root}/conf/data`, readOnly: false }]);
  assertEquals(a.environment, { K: "v" });
  assertEquals(a.allowedHosts, ["https://example.com"]);
  assertEquals(a.httpMaxConcurrency, 2);
  assertEquals(a.line, 2);
  assertEquals(b.entrypoint, "_start");
  assertEquals(b.modulePath, `${root}/conf/only-here.wasm`, "then relative to the config file");
  assertEquals(b.index, 2);
  assertEquals(b.line, 12);
  assertEquals(config.warnings, []);
});

Deno.test("file: URLs and absolute module paths are taken as they are", () => {
  const s = scratch();
  const config = parseModulesToml(
    `[[module]]\nroute = "/"\nmodule = "file://${s.root}/conf/m.wasm"\n` +
      `[[module]]\nroute = "/x"\nmodule = "${s.root}/conf/m.wasm"\n`,
    s.file,
    s.start,
  );
  assertEquals(config.entries.map((e) => e.modulePath), [
    `${s.root}/conf/m.wasm`,
    `${s.root}/conf/m.wasm`,
  ]);
});

Deno.test("invalid TOML names the file, line and column", () => {
  const { message, file } = failure(`[[module]]\nroute = "/"\nmodule = \n`);
  assertIncludes(message, `${file}:3:`);
  assertIncludes(message, "invalid TOML");
});

Deno.test("a missing required key names the file, line, entry index and route", () => {
  const { message, file } = failure(
    `[[module]]\nroute = "/a"\nmodule = "m.wasm"\n\n[[module]]\nroute = "/b"\n`,
  );
  assertIncludes(message, `${file}:5: [[module]] #2 (route '/b'): missing required key 'module'`);
  assertIncludes(
    failure(`[[module]]\nmodule = "m.wasm"\n`).message,
    "[[module]] #1: missing required key 'route'",
  );
});

Deno.test("wrong types are errors naming the key", () => {
  assertIncludes(failure(`[[module]]\nroute = 1\nmodule = "m.wasm"\n`).message, "'route' must be");
  assertIncludes(
    failure(`[[module]]\nroute = "/"\nmodule = "m.wasm"\nvolumes = "x"\n`).message,
    "'volumes' must be a table of strings",
  );
  assertIncludes(
    failure(`[[module]]\nroute = "/"\nmodule = "m.wasm"\nenvironment = { A = 1 }\n`).message,
    "'environment.A' must be a string",
  );
  assertIncludes(
    failure(`[[module]]\nroute = "/"\nmodule = "m.wasm"\nallowed_hosts = "x"\n`).message,
    "'allowed_hosts' must be an array of strings",
  );
  assertIncludes(
    failure(`[[module]]\nroute = "/"\nmodule = "m.wasm"\nhttp_max_concurrency = 1.5\n`).message,
    "'http_max_concurrency' must be a non-negative integer",
  );
});

Deno.test("a missing module file names the paths tried", () => {
  const { message, start } = failure(`[[module]]\nroute = "/"\nmodule = "gone.wasm"\n`);
  assertIncludes(message, "module file 'gone.wasm' not found");
  assertIncludes(message, `${start}/gone.wasm`);
});

Deno.test("a missing or non-directory volume is an error naming the volume", () => {
  assertIncludes(
    failure(`[[module]]\nroute = "/"\nmodule = "m.wasm"\nvolumes = { "/d" = "nope" }\n`).message,
    "volume '/d': directory 'nope' not found",
  );
  assertIncludes(
    failure(`[[module]]\nroute = "/"\nmodule = "m.wasm"\nvolumes = { "/d" = "m.wasm" }\n`)
      .message,
    "is not a directory",
  );
});

Deno.test("oci: references are parsed at load (pulled later); bindle: and other URLs are errors", () => {
  const entry = parse(`[[module]]\nroute = "/"\nmodule = "oci:ghcr.io/x/y:1"\n`).config.entries[0];
  assertEquals(entry.oci?.canonical, "ghcr.io/x/y:1");
  assertEquals(entry.modulePath, "");
  assertIncludes(
    failure(`[[module]]\nroute = "/"\nmodule = "oci:ghcr.io/X/y:1"\n`).message,
    ":1: [[module]] #1 (route '/'): module 'oci:ghcr.io/X/y:1': repository 'X/y'",
  );
  assertIncludes(
    failure(`[[module]]\nroute = "/"\nmodule = "bindle:x/1"\n`).message,
    "bindle is not supported",
  );
  assertIncludes(
    failure(`[[module]]\nroute = "/"\nmodule = "https://example.com/m.wasm"\n`).message,
    "only file paths, file: URLs and oci: references are supported",
  );
});

Deno.test("a route without a leading / is an error", () => {
  assertIncludes(
    failure(`[[module]]\nroute = "hello"\nmodule = "m.wasm"\n`).message,
    "route 'hello' must start with '/'",
  );
});

Deno.test("no entries at all is an error", () => {
  assertIncludes(failure(`# nothing\n`).message, "no [[module]] entries");
  assertIncludes(failure(`module = "x"\n`).message, "must be an array of tables");
});

Deno.test("unknown keys are warnings naming them, not errors", () => {
  const { config } = parse(
    `default_host = "x"\n[[module]]\nroute = "/"\nmodule = "m.wasm"\nbogus = 1\n`,
  );
  assertEquals(config.entries.length, 1);
  assertEquals(config.warnings.length, 2);
  assertIncludes(config.warnings[0], "unknown top-level key 'default_host'");
  assertIncludes(config.warnings[1], "[[module]] #1 (route '/'): unknown key 'bogus'");
});

Deno.test("timeout and memory_limit are read per module; bad values name the key", () => {
  const { config } = parse(
    `[[module]]\nroute = "/"\nmodule = "m.wasm"\ntimeout = 2.5\nmemory_limit = "64MiB"\n` +
      `[[module]]\nroute = "/b"\nmodule = "m.wasm"\nmemory_limit = 1048576\n`,
  );
  assertEquals(config.entries[0].timeoutMs, 2500);
  assertEquals(config.entries[0].memoryLimitBytes, 64 * 1024 * 1024);
  assertEquals(config.entries[1].timeoutMs, undefined);
  assertEquals(config.entries[1].memoryLimitBytes, 1048576);
  assertIncludes(
    failure(`[[module]]\nroute = "/"\nmodule = "m.wasm"\ntimeout = "soon"\n`).message,
    "'timeout' must be a number of seconds from 0.001 to 2147483",
  );
  // A timer past 2^31 ms fires at once; one under a millisecond rounds to none.
  for (const out of ["2500000", "0.0001"]) {
    assertIncludes(
      failure(`[[module]]\nroute = "/"\nmodule = "m.wasm"\ntimeout = ${out}\n`).message,
      "'timeout' must be a number of seconds from 0.001 to 2147483",
    );
  }
  assertIncludes(
    failure(`[[module]]\nroute = "/"\nmodule = "m.wasm"\nmemory_limit = "5GiB"\n`).message,
    "'memory_limit' must be a size such as 128MiB, at most 4GiB",
  );
  assertIncludes(
    failure(`[[module]]\nroute = "/"\nmodule = "m.wasm"\nmemory_limit = "lots"\n`).message,
    "'memory_limit' must be a size",
  );
});

Deno.test("two entries with the same route: a warning names both, the first one is served", () => {
  const { config } = parse(
    `[[module]]\nroute = "/a"\nmodule = "m.wasm"\n\n[[module]]\nroute = "/a"\nmodule = "m.wasm"\n`,
  );
  assertEquals(config.entries.length, 2);
  assertIncludes(
    config.warnings.join("\n"),
    "[[module]] #2 has the same route '/a' as #1 (line 1): it is never reached",
  );
});
