import { assertEquals } from "../_assert.ts";
import { ROOT } from "../_fixtures.ts";
import { tempDir } from "../_temp.ts";
import { sha256Hex } from "../../src/digest.ts";
import { CompileCache, DERIVATION_DIGEST } from "../../src/run/compile_cache.ts";
import denoJson from "../../deno.json" with { type: "json" };

/** The sources whose change must make every cached derivation stale. */
async function derivationSources(): Promise<string> {
  const files = [...Deno.readDirSync(`${ROOT}src/wasm`)]
    .map((entry) => `src/wasm/${entry.name}`).filter((path) => path.endsWith(".ts")).sort();
  files.push("src/inline/variants.ts");
  let text = `wabt ${denoJson.imports.wabt}\n`;
  for (const path of files) text += `${path}\n${await Deno.readTextFile(`${ROOT}${path}`)}\n`;
  return text;
}

Deno.test("the derivation digest is that of the rewriters' sources (update it when they change)", async () => {
  const actual = await sha256Hex(await derivationSources());
  assertEquals(
    DERIVATION_DIGEST,
    actual,
    `a rewriter changed: set DERIVATION_DIGEST in src/run/compile_cache.ts to "${actual}"`,
  );
});

const made = (text: string) => () => ({ bytes: new TextEncoder().encode(text), meta: { text } });

Deno.test("a derivation is made once, then read back by a new cache on the same directory", async () => {
  const dir = await tempDir("wagi-derived-");
  const first = new CompileCache(dir);
  const a = await first.derive("kind", "abc", made("first"));
  assertEquals(first.counts, { hits: 0, made: 1 });
  const second = new CompileCache(dir);
  const b = await second.derive("kind", "abc", made("not used"));
  assertEquals(second.counts, { hits: 1, made: 0 });
  assertEquals([new TextDecoder().decode(b.bytes), b.meta], ["first", { text: "first" }]);
  assertEquals(a.bytes, b.bytes);
});

Deno.test("a damaged entry is made again, never used", async () => {
  const dir = await tempDir("wagi-derived-");
  await new CompileCache(dir).derive("kind", "abc", made("good"));
  const [folder] = [...Deno.readDirSync(dir)];
  const path = `${dir}/${folder.name}/kind-abc`;
  const file = await Deno.readFile(path);
  file[file.length - 1] ^= 1;
  await Deno.writeFile(path, file);
  const cache = new CompileCache(dir);
  const again = await cache.derive("kind", "abc", made("remade"));
  assertEquals([cache.counts, new TextDecoder().decode(again.bytes)], [
    { hits: 0, made: 1 },
    "remade",
  ]);
  // And the entry was replaced by a sound one.
  assertEquals((await new CompileCache(dir).derive("kind", "abc", made("x"))).meta, {
    text: "remade",
  });
});

Deno.test("an unwritable cache directory is said once and derivations still work", async () => {
  const dir = await tempDir("wagi-derived-");
  await Deno.writeTextFile(`${dir}/file`, "");
  const warnings: string[] = [];
  const cache = new CompileCache(`${dir}/file/cache`, (message) => warnings.push(message));
  for (const key of ["a", "b"]) {
    assertEquals((await cache.derive("kind", key, made(key))).meta, { text: key });
  }
  assertEquals(warnings.length, 1);
  assertEquals(warnings[0].includes(`${dir}/file/cache cannot be written`), true, warnings[0]);
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["file"], "no stray temp files");
});

Deno.test("reads that may hold the thread (a start) find, miss and reject damage alike", async () => {
  const dir = await tempDir("wagi-derived-");
  await new CompileCache(dir).derive("kind", "abc", made("good"));
  const starting = new CompileCache(dir, () => {}, () => true);
  const found = await starting.derive("kind", "abc", made("not used"));
  const missing = await starting.derive("kind", "other", made("made"));
  assertEquals(starting.counts, { hits: 1, made: 1 });
  assertEquals(
    [new TextDecoder().decode(found.bytes), new TextDecoder().decode(missing.bytes)],
    ["good", "made"],
  );
  const [folder] = [...Deno.readDirSync(dir)];
  const path = `${dir}/${folder.name}/kind-abc`;
  const file = await Deno.readFile(path);
  file[file.length - 1] ^= 1;
  await Deno.writeFile(path, file);
  const again = await new CompileCache(dir, () => {}, () => true).derive("kind", "abc", made("x"));
  assertEquals(new TextDecoder().decode(again.bytes), "x");
});
