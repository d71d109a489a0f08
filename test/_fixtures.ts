/**
 * Paths of the test-only modules and the bundled ones, and a way to compile them.
 * @module
 */

import { fromFileUrl } from "./_paths.ts";
import { watToWasm } from "../src/wasm/wat.ts";
import { isComponent, ModuleCache } from "../src/run/module_cache.ts";

/** The repository root. */
export const ROOT = fromFileUrl(new URL("../", import.meta.url));

/** The path of a test-only fixture module (built from `test/fixtures/NAME.c`). */
export const fixture = (name: string) => `${ROOT}test/fixtures/${name}`;

/** Compiles a fixture module. */
export async function compileFixture(name: string): Promise<WebAssembly.Module> {
  return await WebAssembly.compile(await Deno.readFile(fixture(name)));
}

const preemptible = new ModuleCache({ preemptible: true });

/** A fixture module compiled as the server compiles it: preemptible, so the pool runs it. */
export function loadFixture(name: string): Promise<WebAssembly.Module> {
  return preemptible.load(fixture(name));
}

/**
 * Every bundled and fixture core module as a binary (text modules compiled), with its file
 * name; components (test/component/ has theirs) are left out.
 */
export async function* everyModule(): AsyncGenerator<{ name: string; bytes: Uint8Array }> {
  for (const dir of ["modules", "test/fixtures"]) {
    for await (const entry of Deno.readDir(`${ROOT}${dir}`)) {
      const path = `${ROOT}${dir}/${entry.name}`;
      if (entry.name.endsWith(".wasm")) {
        const bytes = await Deno.readFile(path);
        if (isComponent(bytes)) continue;
        yield { name: entry.name, bytes };
      } else if (entry.name.endsWith(".wat")) {
        yield { name: entry.name, bytes: await watToWasm(path, await Deno.readTextFile(path)) };
      }
    }
  }
}
