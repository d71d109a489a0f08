/**
 * The layout's rules, checked on every import in `src/`: each folder may use only the folders
 * below it, so that what happens where stays where the layout says (see README, Architecture).
 * @module
 */

import { assertEquals } from "./_assert.ts";
import { ROOT } from "./_fixtures.ts";
import { dirname, join, relative } from "node:path";

/**
 * For each folder of `src/`, the folders of `src/` its files may import from (besides its own
 * and the helpers at the top: `digest.ts`, `paths.ts`). Anything not listed here may import
 * nothing of `src/`.
 */
const MAY_IMPORT: Record<string, readonly string[]> = {
  // Load-time binary rewriting: nothing else.
  wasm: [],
  // The WASI host: nothing about pages, workers, routes or HTTP.
  wasi: [],
  // Pulling modules from registries: nothing else.
  oci: [],
  config: ["oci"],
  routing: [],
  cgi: [],
  outbound_http: ["wasi"],
  // What every way of running a guest shares.
  run: ["wasm", "wasi", "outbound_http"],
  // The two ways of running a guest: neither knows the other.
  inline: ["run", "wasm", "wasi", "outbound_http"],
  pool: ["run", "wasi", "wasm", "component"],
  // Running WASI 0.2 components (jco's code and this host's WASI 0.2): beside the pool and the
  // server's thread, which run them through it.
  component: ["run", "wasi", "wasm", "outbound_http", "inline"],
  // The HTTP side knows guests through the run contract only.
  server: ["run", "cgi", "routing", "config", "outbound_http"],
  // The composition root.
  cli: [
    "server",
    "run",
    "inline",
    "pool",
    "config",
    "routing",
    "cgi",
    "wasi",
    "outbound_http",
    "oci",
    "wasm",
    "component",
  ],
};

/** The files of `src/` each file imports, relative to `src/`. */
async function importsOf(path: string): Promise<string[]> {
  const text = await Deno.readTextFile(path);
  const found: string[] = [];
  for (const match of text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)) {
    found.push(relative(join(ROOT, "src"), join(dirname(path), match[1])));
  }
  for (const match of text.matchAll(/new URL\(\s*"(\.{1,2}\/[^"]+\.ts)"/g)) {
    found.push(relative(join(ROOT, "src"), join(dirname(path), match[1])));
  }
  return found;
}

async function* sourceFiles(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* sourceFiles(path);
    else if (entry.name.endsWith(".ts")) yield path;
  }
}

Deno.test("each folder of src/ imports only from the folders its layer may use", async () => {
  const broken: string[] = [];
  for await (const path of sourceFiles(join(ROOT, "src"))) {
    const file = relative(join(ROOT, "src"), path);
    const folder = file.includes("/") ? file.slice(0, file.indexOf("/")) : undefined;
    if (folder === undefined) continue; // main.ts and the helpers at the top
    const allowed = MAY_IMPORT[folder];
    if (allowed === undefined) {
      broken.push(`${file}: its folder has no rule in this test`);
      continue;
    }
    for (const target of await importsOf(path)) {
      if (target.startsWith("..")) continue; // deno.json and the like
      const targetFolder = target.includes("/") ? target.slice(0, target.indexOf("/")) : "";
      if (targetFolder === "" || targetFolder === folder) continue;
      if (!allowed.includes(targetFolder)) broken.push(`${file} imports ${target}`);
    }
  }
  assertEquals(broken, []);
});

Deno.test("the server's files use the run contract, not how runs are carried out", async () => {
  const broken: string[] = [];
  for await (const path of sourceFiles(join(ROOT, "src/server"))) {
    for (const target of await importsOf(path)) {
      if (
        target.startsWith("run/") && target !== "run/contract.ts" &&
        !target.startsWith("run/module_")
      ) {
        broken.push(`${relative(ROOT, path)} imports ${target}`);
      }
    }
  }
  assertEquals(broken, []);
});

Deno.test("nothing in src/ loads Node's compatibility layer (it costs tens of ms at start)", async () => {
  const users: string[] = [];
  for await (const path of sourceFiles(join(ROOT, "src"))) {
    const text = await Deno.readTextFile(path);
    if (/(?:from|import)\s*\(?\s*"node:/.test(text)) users.push(relative(ROOT, path));
  }
  assertEquals(users, []);
});
