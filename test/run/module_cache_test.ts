import { assertEquals, assertOk, assertRejects } from "../_assert.ts";
import { ModuleCache, ModuleLoadError } from "../../src/run/module_cache.ts";
import { fixture } from "../_fixtures.ts";
import { tempDir } from "../_temp.ts";

async function writeTemp(name: string, content: string | Uint8Array): Promise<string> {
  const dir = await tempDir("wagi-cache-");
  const path = `${dir}/${name}`;
  if (typeof content === "string") await Deno.writeTextFile(path, content);
  else await Deno.writeFile(path, content);
  return path;
}

Deno.test("the same file, and the same bytes under another name, compile once", async () => {
  const cache = new ModuleCache();
  const a = await cache.load(fixture("cat.wasm"));
  const b = await cache.load(fixture("cat.wasm"));
  const copy = await writeTemp("copy.wasm", await Deno.readFile(fixture("cat.wasm")));
  const c = await cache.load(copy);
  assertOk(a === b && b === c);
  assertOk(a !== await cache.load(fixture("exits.wasm")));
});

Deno.test("WebAssembly text is compiled at load time", async () => {
  const path = await writeTemp(
    "m.wat",
    `(module (memory (export "memory") 1) (func (export "_start")))`,
  );
  const module = await new ModuleCache().load(path);
  assertEquals(WebAssembly.Module.exports(module).map((e) => e.name), ["memory", "_start"]);
});

Deno.test("invalid text or binary names the file and the reason", async () => {
  const badText = await writeTemp("bad.wat", '(module (func (export "x") (i32.bogus)))');
  await assertRejects(() => new ModuleCache().load(badText), ModuleLoadError, badText);
  const badBinary = await writeTemp("bad.wasm", new Uint8Array([0, 0x61, 0x73, 0x6d, 9, 9]));
  await assertRejects(
    () => new ModuleCache().load(badBinary),
    ModuleLoadError,
    "invalid WebAssembly module",
  );
  // A component (what jco or cargo-component make) is named as such, not as a broken module.
  const component = await writeTemp(
    "component.wasm",
    new Uint8Array([0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0]),
  );
  await assertRejects(
    () => new ModuleCache().load(component, 128 * 1024 * 1024),
    ModuleLoadError,
    `${component}: a WebAssembly component (component model, WASI 0.2), not a core module`,
  );
  await assertRejects(
    () => new ModuleCache().load("/no/such.wasm"),
    ModuleLoadError,
    "cannot read",
  );
});

Deno.test("wasi_experimental_http imports load; an unknown function there is named", async () => {
  const ok = await writeTemp(
    "http.wat",
    `(module (import "wasi_experimental_http" "req" (func (param i32) (result i32))))`,
  );
  assertOk(await new ModuleCache().load(ok));
  const bad = await writeTemp(
    "bogus.wat",
    `(module (import "wasi_experimental_http" "bogus" (func)))`,
  );
  await assertRejects(
    () => new ModuleCache().load(bad),
    ModuleLoadError,
    "'wasi_experimental_http.bogus'",
  );
});

Deno.test("an import the host does not provide is an error naming it", async () => {
  const path = await writeTemp(
    "env.wat",
    `(module (import "env" "mystery" (func)) (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))))`,
  );
  await assertRejects(() => new ModuleCache().load(path), ModuleLoadError, "'env.mystery'");
});

Deno.test("random bytes are an invalid module, said without quoting them back as text", async () => {
  const noise = new Uint8Array(4096);
  crypto.getRandomValues(noise);
  noise[0] = 0x01; // not the magic number
  const path = await writeTemp("noise.wasm", noise);
  await assertRejects(
    () => new ModuleCache().load(path),
    ModuleLoadError,
    "noise.wasm: invalid WebAssembly module: neither a binary module",
  );
  const message = await new ModuleCache().load(path).then(() => "", (e) => (e as Error).message);
  assertOk(message.length < 300, `the message quotes the file: ${message.length} chars`);
});
