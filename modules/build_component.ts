/**
 * Builds WASI 0.2 components (called by build.sh):
 *
 * - `deno run -A modules/build_component.ts http SOURCE.c WORLD`: a C file written against the
 *   canonical ABI (no libc) → `SOURCE.wasm`, a component of `WORLD` in modules/wit;
 * - `deno run -A modules/build_component.ts command CORE.wasm OUT.wasm`: a WASI preview1 command
 *   module → a `wasi:cli/command` component, through wasmtime's preview1 adapter as jco ships it;
 * - `deno run -A modules/build_component.ts js SOURCE.js WORLD OUT.wasm`: a JavaScript `fetch`
 *   handler → a component of `WORLD` embedding StarlingMonkey, through componentize-js.
 *
 * The component tools are wasm-tools as jco-transpile ships them, and componentize-js (registry
 * packages only).
 * @module
 */

import { componentEmbed, componentNew } from "npm:@bytecodealliance/jco-transpile@0.3.9/wasm-tools";

/** The jco release whose preview1 command adapter is used. */
const ADAPTER_FROM = "@bytecodealliance/jco@1.15.4";

/**
 * modules/wit as one WIT source: the world file, then each package of deps/ nested in it (the
 * tools read no files themselves under Deno).
 */
function witSource(): string {
  const dir = new URL("./wit/", import.meta.url);
  let source = Deno.readTextFileSync(new URL("world.wit", dir));
  const deps = [...Deno.readDirSync(new URL("deps/", dir))].filter((e) => e.isDirectory)
    .map((e) => e.name).sort();
  for (const name of deps) {
    const text = Deno.readTextFileSync(new URL(`deps/${name}/package.wit`, dir));
    source += "\n" + text.replace(/^package ([^;]+);/m, "package $1 {") + "\n}\n";
  }
  return source;
}

async function run(command: string, args: string[]): Promise<void> {
  const { success, stderr } = await new Deno.Command(command, { args, stderr: "piped" }).output();
  if (!success) throw new Error(`${command} failed: ${new TextDecoder().decode(stderr)}`);
}

async function buildHttp(source: string, world: string): Promise<void> {
  const core = source.replace(/\.c$/, ".core.wasm");
  await run("clang-14", [
    "--target=wasm32-unknown-unknown",
    "-O2",
    "-s",
    "-nostdlib",
    "-fuse-ld=lld",
    "-Wl,--no-entry",
    "-o",
    core,
    source,
  ]);
  try {
    const embedded = await componentEmbed({
      binary: Deno.readFileSync(core),
      witSource: witSource(),
      world,
    });
    const out = source.replace(/\.c$/, ".wasm");
    Deno.writeFileSync(out, await componentNew(embedded, []));
    console.log(`built ${out}`);
  } finally {
    Deno.removeSync(core);
  }
}

/**
 * The JavaScript componentizer. Its engine speaks WASI 0.2.10, and wants a world no newer: our
 * WIT (0.2.12) is handed to it as 0.2.10 (the server serves any 0.2.x).
 */
export const COMPONENTIZE_JS_VERSION = "0.23.0";
const COMPONENTIZE_JS = `npm:@bytecodealliance/componentize-js@${COMPONENTIZE_JS_VERSION}`;

async function buildJs(source: string, world: string, out: string): Promise<void> {
  const { componentize } = await import(COMPONENTIZE_JS);
  const { component } = await componentize(Deno.readTextFileSync(source), {
    sourceName: source.slice(source.lastIndexOf("/") + 1),
    // As a string: given a path, its WIT reader finds no files under Deno.
    witWorld: witSource().replaceAll("@0.2.12", "@0.2.10"),
    worldName: world,
  });
  Deno.writeFileSync(out, component);
  console.log(`built ${out}`);
}

/** jco's preview1 command adapter, from its npm tarball. */
async function commandAdapter(): Promise<Uint8Array> {
  const [scope, rest] = ADAPTER_FROM.slice(1).split("/");
  const [name, version] = rest.split("@");
  const url = `https://registry.npmjs.org/@${scope}/${name}/-/${name}-${version}.tgz`;
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeFileSync(`${dir}/package.tgz`, new Uint8Array(await response.arrayBuffer()));
    await run("tar", ["-xzf", `${dir}/package.tgz`, "-C", dir]);
    return Deno.readFileSync(`${dir}/package/lib/wasi_snapshot_preview1.command.wasm`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

async function buildCommand(core: string, out: string): Promise<void> {
  const component = await componentNew(Deno.readFileSync(core), [
    ["wasi_snapshot_preview1", await commandAdapter()],
  ]);
  Deno.writeFileSync(out, component);
  console.log(`built ${out}`);
}

if (import.meta.main) {
  const [kind, ...args] = Deno.args;
  if (kind === "http") await buildHttp(args[0], args[1]);
  else if (kind === "command") await buildCommand(args[0], args[1]);
  else if (kind === "js") await buildJs(args[0], args[1], args[2]);
  else {
    throw new Error(
      "usage: build_component.ts http SOURCE.c WORLD | command CORE.wasm OUT.wasm | " +
        "js SOURCE.js WORLD OUT.wasm",
    );
  }
}
