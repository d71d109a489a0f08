/**
 * Bundling the server: the program, its server-isolate script and its pool-worker script, as
 * the image ships them (`deno task bundle`) and as `deno task start` runs them (see start.ts).
 * A bundle loads in a fraction of the time the ~90 source files take (measured: module graph
 * ~57 → ~20 ms).
 * @module
 */

/** The `deno` commands that write a bundle of the sources under `root` into `outdir`. */
export function bundleCommands(root: string, outdir: string): string[][] {
  const common = ["bundle", "--quiet", "--platform", "deno"];
  return [
    [
      ...common,
      // The WebAssembly-text compiler and jco stay packages of their own, loaded only when
      // needed (jco also finds its WebAssembly files beside its own code).
      ...["--external", "wabt", "--external", "jco-transpile"],
      ...["--code-splitting", "--outdir", outdir],
      `${root}/src/main.ts`,
      `${root}/src/cli/server_isolate.ts`,
    ],
    [...common, "-o", `${outdir}/guest_worker.js`, `${root}/src/pool/guest_worker.ts`],
    [
      ...common,
      ...["--external", "jco-transpile"],
      ...["-o", `${outdir}/transpile_worker.js`],
      `${root}/src/component/transpile_worker.ts`,
    ],
  ];
}

/** Writes a bundle of the sources under `root` into `outdir`; throws with Deno's output if not. */
export async function bundle(root: string, outdir: string): Promise<void> {
  for (const args of bundleCommands(root, outdir)) {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: root,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (code !== 0) {
      throw new Error(`deno ${args.join(" ")} failed: ${new TextDecoder().decode(stderr)}`);
    }
  }
}

if (import.meta.main) {
  const root = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
  await bundle(root, Deno.args[0] ?? `${root}/dist`);
}
