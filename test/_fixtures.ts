/**
 * Paths of the test-only modules and the bundled ones, and a way to compile them.
 * @module
 */

import { fromFileUrl } from "./_paths.ts";

/** The repository root. */
export const ROOT = fromFileUrl(new URL("../", import.meta.url));

/** The path of a test-only fixture module (built from `test/fixtures/NAME.c`). */
export const fixture = (name: string) => `${ROOT}test/fixtures/${name}`;

/** Compiles a fixture module. */
export async function compileFixture(name: string): Promise<WebAssembly.Module> {
  return await WebAssembly.compile(await Deno.readFile(fixture(name)));
}
