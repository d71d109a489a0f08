import { assertEquals, assertIncludes, assertOk } from "../_assert.ts";
import { ROOT } from "../_fixtures.ts";
import { freePort } from "../_net.ts";
import { tempDir } from "../_temp.ts";
import { DatabaseSync } from "node:sqlite";

const dockerfile = await Deno.readTextFile(`${ROOT}Dockerfile`);
const denoJson = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));

/** The build stage's RUN command (shell form). */
function buildCommand(): string {
  return dockerfile.match(/^RUN (.+)$/m)![1].trim();
}

/** The final stage's CMD (exec form). */
function startCommand(): string[] {
  return JSON.parse(dockerfile.match(/^CMD (\[.+\])$/m)![1]);
}

Deno.test("the image is multi-stage, slim, non-root, and ships only what the server needs", async () => {
  // The FROM lines with their ARG defaults (the official images) filled in.
  const defaults = new Map(
    [...dockerfile.matchAll(/^ARG (\w+)=(\S+)$/gm)].map((m) => [m[1], m[2]]),
  );
  const stages = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) =>
    m[1].replace(/\$\{(\w+)\}/g, (_, name) => defaults.get(name) ?? "")
  );
  assertEquals(stages[0], "denoland/deno:2.9.6");
  assertEquals(stages.length, 2);
  assertIncludes(stages[1], "distroless");
  assertOk(/^USER nonroot$/m.test(dockerfile), "runs as a non-root user");
  assertOk(/^ENV [^]*PORT=8080/m.test(dockerfile), "PORT defaults to 8080");
  const ignore = await Deno.readTextFile(`${ROOT}.dockerignore`);
  assertIncludes(ignore, "*\n");
  for (const kept of ["!deno.json", "!deno.lock", "!src/", "!modules/"]) {
    assertIncludes(ignore, kept);
  }
  assertEquals(
    buildCommand(),
    denoJson.tasks["prepare-image"],
    "the Dockerfile and the prepare-image task run the same command",
  );
});

Deno.test("the Dockerfile's build and start commands work outside Docker: / says Oh hi world", async () => {
  const denoDir = await tempDir("wagi-image-deno-dir-");
  const env = { DENO_DIR: denoDir, DENO_NO_UPDATE_CHECK: "1" };
  // What the build stage copies into /app, and its RUN as its shell runs it (this deno first on
  // the PATH).
  const app = await tempDir("wagi-image-app-");
  for (const kept of ["deno.json", "deno.lock", "src", "modules"]) {
    await new Deno.Command("cp", { args: ["-r", `${ROOT}${kept}`, `${app}/${kept}`] }).output();
  }
  const bin = Deno.execPath().slice(0, Deno.execPath().lastIndexOf("/"));
  const prepared = await new Deno.Command("sh", {
    args: ["-c", buildCommand()],
    cwd: app,
    env: { ...env, PATH: `${bin}:${Deno.env.get("PATH")}` },
    stdout: "null",
    stderr: "piped",
  }).output();
  assertEquals(prepared.code, 0, new TextDecoder().decode(prepared.stderr));

  // Started exactly as the image's CMD, with the DENO_DIR the final stage ships (a copy, as a
  // new container has it): nothing is downloaded.
  const [start, ...startArgs] = startCommand();
  assertEquals(start, "deno");
  assertOk(startArgs.includes("--cached-only"));
  const shipped = await tempDir("wagi-image-shipped-deno-dir-");
  await new Deno.Command("cp", { args: ["-r", `${app}/.deno-run/.`, shipped] }).output();
  const compiledBefore = cachedScripts(shipped, "v8_code_cache_v2", "codecache");
  const analysedBefore = cachedScripts(shipped, "dep_analysis_cache_v2", "moduleinfocache");
  for (const before of [compiledBefore, analysedBefore]) {
    assertOk(
      before.has(`file://${app}/dist/main.js`),
      "the build left the bundle analysed and compiled in the shipped DENO_DIR",
    );
  }
  const port = freePort();
  // Two server isolates whatever this machine's CPUs: the second runs its own script.
  const child = new Deno.Command(Deno.execPath(), {
    args: [...startArgs, "--servers", "2"],
    cwd: app,
    env: { ...env, DENO_DIR: shipped, PORT: String(port) },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const stderrDone = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (text) => void (stderr += text) }),
  );
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("Ready: serving on")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the server exited before it was ready:\n${out}`);
      out += value;
    }
    assertIncludes(out, `Ready: serving on http://0.0.0.0:${port}`);
    reader.cancel();
    const response = await fetch(`http://127.0.0.1:${port}/`);
    assertEquals([response.status, await response.text()], [200, "Oh hi world\n"]);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    assertEquals(health.status, 200);
    await health.body?.cancel();
    while (!stderr.includes("serving from 2 of 2 server isolates")) {
      assertOk(!stderr.includes("server isolate 1"), stderr);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    child.kill("SIGTERM");
    assertEquals((await child.status).code, 0);
    await stderrDone;
  }
  // The build left every module compiled and rewritten: the start only read them back.
  assertIncludes(stderr, "derived modules read back, 0 made");
  // And every script the start and its first answers ran was analysed (for its imports) and
  // compiled at the build already.
  const compiled = cachedScripts(shipped, "v8_code_cache_v2", "codecache");
  assertEquals([...compiled].filter((s) => !compiledBefore.has(s)), []);
  const analysed = cachedScripts(shipped, "dep_analysis_cache_v2", "moduleinfocache");
  assertEquals([...analysed].filter((s) => !analysedBefore.has(s)), []);
});

/**
 * The scripts a DENO_DIR holds something for, in one of Deno 2.9's SQLite caches: `codecache`
 * (compiled code: the bundle, and the runtime's own code loaded when first used) or
 * `moduleinfocache` (a script's imports, found by parsing it).
 */
function cachedScripts(denoDir: string, file: string, table: string): Set<string> {
  const db = new DatabaseSync(`${denoDir}/${file}`, { readOnly: true });
  try {
    const rows = db.prepare(`SELECT specifier FROM ${table}`).all();
    return new Set(rows.map((row) => String(row.specifier)));
  } finally {
    db.close();
  }
}
