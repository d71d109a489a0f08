/**
 * The JavaScript example component, built as `deno task build-js-component` builds it (~13 MB,
 * not committed), for the test that serves it and for the benchmark.
 * @module
 */

import { fromFileUrl } from "./_paths.ts";

const ROOT = fromFileUrl(new URL("../", import.meta.url));

/** Builds modules/js_component.js into `out` (in a process of its own); throws why it could not. */
export async function buildJsComponent(out: string): Promise<void> {
  const { success, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      `${ROOT}modules/build_component.ts`,
      "js",
      `${ROOT}modules/js_component.js`,
      "http-component",
      out,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) {
    throw new Error(`building the JavaScript component: ${new TextDecoder().decode(stderr)}`);
  }
}
