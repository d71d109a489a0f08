import { assertEquals, assertIncludes } from "../_assert.ts";
import { ROOT } from "../_fixtures.ts";
import { writeConfig } from "../_temp.ts";
import { startServer } from "./_server.ts";

/** The benchmark's modules in other languages (modules/query_rust.rs, modules/query_as.ts). */
const config = await writeConfig(`
[[module]]
route = "/rust/..."
module = "${ROOT}modules/query_rust.wasm"

[[module]]
route = "/as/..."
module = "${ROOT}modules/query_as.wasm"

[[module]]
route = "/table"
module = "${ROOT}modules/table.wasm"
`);

const page = (path: string) =>
  `<!doctype html><title>query</title><h1>3 parameters for ${path}</h1><table>` +
  "<tr><td>a</td><td>1</td></tr><tr><td>b</td><td>x y z</td></tr>" +
  "<tr><td>c</td><td>&lt;b&gt;</td></tr></table>\n";

Deno.test("the Rust and AssemblyScript handlers answer the same page, on both paths", async () => {
  for (const flags of [[], ["--pool-only"]]) {
    const server = await startServer(["-c", config, ...flags]);
    try {
      for (const language of ["rust", "as"]) {
        // Twice: a reused instance answers as a fresh one.
        for (let i = 0; i < 2; i++) {
          const response = await fetch(`${server.url}/${language}/bench?a=1&b=x%20y+z&c=%3Cb%3E`);
          assertEquals(response.headers.get("content-type"), "text/html; charset=utf-8");
          assertEquals(await response.text(), page("/bench"), `${language} ${flags}`);
        }
      }
    } finally {
      await server.stop();
    }
  }
});

Deno.test("the CPU-heavier table renders 200 rows that depend on the seed", async () => {
  const server = await startServer(["-c", config]);
  try {
    const [one, two] = await Promise.all(
      ["1", "2"].map((seed) => fetch(`${server.url}/table?seed=${seed}`).then((r) => r.text())),
    );
    for (const html of [one, two]) {
      assertEquals(html.split("<tr><td>").length - 1, 200);
      assertIncludes(html, "</table>\n");
    }
    assertEquals(one === two, false, "the seed changes the numbers");
  } finally {
    await server.stop();
  }
});
