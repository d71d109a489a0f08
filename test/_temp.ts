/**
 * Temporary directories for tests, and configurations written into them: every one is removed
 * with what it holds when the test process ends, whatever the tests did.
 * @module
 */

const made = new Set<string>();

globalThis.addEventListener("unload", () => {
  for (const dir of made) {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch { /* already gone */ }
  }
});

/** A new temporary directory, removed when the test process ends. */
export function tempDirSync(prefix = "wagi-test-"): string {
  const dir = Deno.makeTempDirSync({ prefix });
  made.add(dir);
  return dir;
}

/** A new temporary directory, removed when the test process ends. */
export function tempDir(prefix = "wagi-test-"): Promise<string> {
  return Promise.resolve(tempDirSync(prefix));
}

/**
 * Writes `toml` as `modules.toml` into a new temporary directory, with `files` (name → text or
 * bytes) beside it; returns the path of `modules.toml`.
 */
export async function writeConfig(
  toml: string,
  files: Record<string, string | Uint8Array> = {},
  prefix = "wagi-config-",
): Promise<string> {
  const dir = await tempDir(prefix);
  for (const [name, content] of Object.entries(files)) {
    if (typeof content === "string") await Deno.writeTextFile(`${dir}/${name}`, content);
    else await Deno.writeFile(`${dir}/${name}`, content);
  }
  await Deno.writeTextFile(`${dir}/modules.toml`, toml);
  return `${dir}/modules.toml`;
}
