import { assertEquals, assertIncludes, assertThrows } from "../_assert.ts";
import { parseListen, parseServeArgs, UsageError } from "../../src/cli/serve_options.ts";
import { EnvError, parseEnvAssignment, parseEnvFile } from "../../src/cli/env_file.ts";
import { tempDirSync } from "../_temp.ts";

function setup() {
  const start = tempDirSync("wagi-cli-");
  Deno.writeTextFileSync(`${start}/modules.toml`, "");
  Deno.writeTextFileSync(`${start}/one.env`, "A=1\nB=file\n");
  Deno.writeTextFileSync(`${start}/two.env`, "B=second\n");
  return start;
}

const noEnv = (_: string) => undefined;

Deno.test("defaults: 127.0.0.1:3000, localhost:3000, -c relative to the start directory", () => {
  const start = setup();
  const options = parseServeArgs(["-c", "modules.toml"], noEnv, start, "/elsewhere");
  assertEquals(options.configFile, `${start}/modules.toml`);
  assertEquals(options.listen, { hostname: "127.0.0.1", port: 3000 });
  assertEquals(options.hostname, { name: "localhost", port: "3000" });
  assertEquals(options.tls, undefined);
  assertEquals(options.env, []);
});

Deno.test("PORT without -l listens on 0.0.0.0:$PORT; -l wins over PORT", () => {
  const start = setup();
  const env = (name: string) => (name === "PORT" ? "8080" : undefined);
  assertEquals(parseServeArgs(["-c", "modules.toml"], env, start, start).listen, {
    hostname: "0.0.0.0",
    port: 8080,
  });
  assertEquals(
    parseServeArgs(["-c", "modules.toml", "--listen=[::1]:9000"], env, start, start).listen,
    { hostname: "::1", port: 9000 },
  );
});

Deno.test("an invalid listen address is a clear error", () => {
  assertThrows(() => parseListen("nope"), UsageError, "--listen 'nope': expected IP:PORT");
  assertThrows(() => parseListen("127.0.0.1:99999"), UsageError, "expected IP:PORT");
});

Deno.test("a missing or non-file config is an error; no -c at all is too", () => {
  const start = setup();
  assertThrows(() => parseServeArgs(["-c", "x.toml"], noEnv, start, start), UsageError, "x.toml");
  assertThrows(() => parseServeArgs(["-c", "."], noEnv, start, start), UsageError, "not a file");
  assertThrows(() => parseServeArgs([], noEnv, start, start), UsageError, "-c/--config");
});

Deno.test("--default-config resolves against the task directory, and -c wins over it", () => {
  const start = setup();
  const other = setup();
  const byDefault = parseServeArgs(["--default-config", "modules.toml"], noEnv, start, other);
  assertEquals(byDefault.configFile, `${other}/modules.toml`);
  const explicit = parseServeArgs(
    ["--default-config", "modules.toml", "-c", "modules.toml"],
    noEnv,
    start,
    other,
  );
  assertEquals(explicit.configFile, `${start}/modules.toml`);
});

Deno.test("env files in order, then -e; later wins", () => {
  const start = setup();
  const options = parseServeArgs(
    ["-c", "modules.toml", "--env-file", "one.env", "--env-file", "two.env", "-e", "A=flag"],
    noEnv,
    start,
    start,
  );
  assertEquals(options.env, [["A", "1"], ["B", "file"], ["B", "second"], ["A", "flag"]]);
});

Deno.test("TLS needs both files; env vars supply them too", () => {
  const start = setup();
  assertThrows(
    () => parseServeArgs(["-c", "modules.toml", "--tls-cert", "c.pem"], noEnv, start, start),
    UsageError,
    "--tls-cert and --tls-key go together",
  );
  const env = (name: string) =>
    ({ WAGI_TLS_CERT: "/c.pem", WAGI_TLS_KEY: "/k.pem" } as Record<string, string>)[name];
  assertEquals(parseServeArgs(["-c", "modules.toml"], env, start, start).tls, {
    certFile: "/c.pem",
    keyFile: "/k.pem",
  });
});

Deno.test("--log-dir, or WAGI_LOG_DIR, relative to the start directory", () => {
  const start = setup();
  assertEquals(
    parseServeArgs(["-c", "modules.toml", "--log-dir", "logs"], noEnv, start, start).logDir,
    `${start}/logs`,
  );
  const env = (name: string) => (name === "WAGI_LOG_DIR" ? "/var/log/wagi" : undefined);
  assertEquals(parseServeArgs(["-c", "modules.toml"], env, start, start).logDir, "/var/log/wagi");
});

Deno.test("bindle flags and unknown flags are refused", () => {
  const start = setup();
  assertThrows(
    () => parseServeArgs(["-b", "x/1"], noEnv, start, start),
    UsageError,
    "bindle is not supported",
  );
  assertThrows(
    () => parseServeArgs(["--bindle-server", "x"], noEnv, start, start),
    UsageError,
    "bindle",
  );
  assertThrows(() => parseServeArgs(["--frobnicate"], noEnv, start, start), UsageError, "unknown");
  assertThrows(() => parseServeArgs(["-c"], noEnv, start, start), UsageError, "needs a value");
});

Deno.test("-e splits at the first =, strips matching quotes, refuses an empty key", () => {
  assertEquals(parseEnvAssignment("A=b=c"), ["A", "b=c"]);
  assertEquals(parseEnvAssignment("A="), ["A", ""]);
  assertEquals(parseEnvAssignment(`A="quoted value"`), ["A", "quoted value"]);
  assertEquals(parseEnvAssignment(`A='x"`), ["A", `'x"`]);
  assertThrows(() => parseEnvAssignment("=v"), EnvError, "name is empty");
  assertThrows(() => parseEnvAssignment("novalue"), EnvError, "expected KEY=VALUE");
});

Deno.test("env files: export, spaces around =, quotes, comments; bad lines name file:line", () => {
  assertEquals(
    parseEnvFile(`# c\n\nA=1\nexport B=two\nC = "three four"\nD='x'\nE=\n`, "f.env"),
    [["A", "1"], ["B", "two"], ["C", "three four"], ["D", "x"], ["E", ""]],
  );
  let message = "";
  try {
    parseEnvFile("A=1\nthis is not an assignment\n", "f.env");
  } catch (error) {
    message = (error as Error).message;
  }
  assertIncludes(message, "f.env:2:");
});

Deno.test("limit flags: sizes, seconds and counts, with defaults and clear errors", () => {
  const start = setup();
  const defaults = parseServeArgs(["-c", "modules.toml"], noEnv, start, start);
  assertEquals(defaults.limits, { timeoutMs: 30_000, memoryLimitBytes: 128 * 1024 * 1024 });
  assertEquals(defaults.caps, { maxBodyBytes: 64 * 1024 * 1024, maxResponseBytes: 1024 ** 3 });
  const set = parseServeArgs(
    [
      ...["-c", "modules.toml", "--timeout", "2.5", "--memory-limit", "32MiB"],
      ...["--max-body=1KiB", "--max-response", "2MiB", "--workers", "3", "--max-concurrency", "9"],
      ...["--servers", "2"],
    ],
    noEnv,
    start,
    start,
  );
  assertEquals(set.limits, { timeoutMs: 2500, memoryLimitBytes: 32 * 1024 * 1024 });
  assertEquals(set.caps, { maxBodyBytes: 1024, maxResponseBytes: 2 * 1024 * 1024 });
  assertEquals([set.workers, set.maxConcurrency, set.servers], [3, 9, 2]);
  // Not given: as many as the CPUs, decided where the port is known to be shareable.
  assertEquals(defaults.servers, undefined);
  assertThrows(
    () => parseServeArgs(["-c", "modules.toml", "--memory-limit", "huge"], noEnv, start, start),
    UsageError,
    "--memory-limit 'huge': expected a size",
  );
  assertThrows(
    () => parseServeArgs(["-c", "modules.toml", "--memory-limit", "8GiB"], noEnv, start, start),
    UsageError,
    "--memory-limit '8GiB': expected a size such as 128MiB, at most 4GiB",
  );
  for (const flag of ["--timeout", "--drain-timeout"]) {
    for (const out of ["3000000", "0.0001"]) {
      assertThrows(
        () => parseServeArgs(["-c", "modules.toml", flag, out], noEnv, start, start),
        UsageError,
        `${flag} '${out}': expected a number of seconds from 0.001 to 2147483`,
      );
    }
  }
  assertThrows(
    () => parseServeArgs(["-c", "modules.toml", "--workers", "0"], noEnv, start, start),
    UsageError,
    "--workers '0'",
  );
  assertThrows(
    () => parseServeArgs(["-c", "modules.toml", "--servers", "two"], noEnv, start, start),
    UsageError,
    "--servers 'two': expected a positive integer",
  );
});

Deno.test("--metrics is on by default, off, or an address; --access-log takes a format and a file", () => {
  const start = setup();
  const parse = (...args: string[]) =>
    parseServeArgs(["-c", "modules.toml", ...args], noEnv, start, start);
  assertEquals(parse().metrics, "on");
  assertEquals(parse("--metrics", "off").metrics, "off");
  assertEquals(parse("--metrics", "0.0.0.0:9090").metrics, { hostname: "0.0.0.0", port: 9090 });
  assertThrows(() => parse("--metrics", "maybe"), UsageError, "expected on, off or IP:PORT");
  assertEquals(parse().accessLog, undefined);
  assertEquals(parse("--access-log", "json", "--access-log-file", "a.log").accessLog, {
    format: "json",
    file: `${start}/a.log`,
  });
  assertEquals(parse("--access-log", "common").accessLog, { format: "common", file: undefined });
  assertThrows(() => parse("--access-log", "combined"), UsageError, "expected common or json");
  assertThrows(() => parse("--access-log-file", "a.log"), UsageError, "needs --access-log");
});

Deno.test("--module-cache defaults under XDG_CACHE_HOME, else HOME; --pool-only and --load-only", () => {
  const start = setup();
  const parse = (env: Record<string, string>, ...args: string[]) =>
    parseServeArgs(["-c", "modules.toml", ...args], (n) => env[n], start, start);
  assertEquals(parse({ XDG_CACHE_HOME: "/c", HOME: "/h" }).moduleCache, "/c/wagi-deno");
  assertEquals(parse({ HOME: "/h" }).moduleCache, "/h/.cache/wagi-deno");
  assertEquals(parse({}).moduleCache, undefined);
  assertEquals(parse({}, "--module-cache", "mc").moduleCache, `${start}/mc`);
  assertEquals([parse({}).poolOnly, parse({}).loadOnly], [false, false]);
  const both = parse({}, "--pool-only", "--load-only");
  assertEquals([both.poolOnly, both.loadOnly], [true, true]);
});
