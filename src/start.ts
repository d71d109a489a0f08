/**
 * `deno task start`'s entry: runs the server from a bundle of the sources, made on the first
 * start after a change to them, so that a start does not load the ~90 source files one by one
 * (measured: ~60 ms of a ~250 ms start). The bundle is named for the sources it was made from
 * (their paths, sizes and modification times), under `.bundle/` (the newest few are kept: a
 * server started earlier still loads parts of its own); a start that finds its bundle runs it at
 * once.
 * @module
 */

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const BUNDLES = `${ROOT}/.bundle`;

/** Lists every file under `dir` with its size and modification time. */
function listFiles(dir: string, into: string[]): void {
  for (const entry of Deno.readDirSync(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) listFiles(path, into);
    else if (entry.isFile) {
      const { size, mtime } = Deno.statSync(path);
      into.push(`${path} ${size} ${mtime?.getTime()}`);
    }
  }
}

/** A name for the current sources: what the program is built from, and its import map. */
function sourcesStamp(): string {
  const lines: string[] = [];
  listFiles(`${ROOT}/src`, lines);
  for (const file of ["deno.json", "deno.lock"]) {
    const { size, mtime } = Deno.statSync(`${ROOT}/${file}`);
    lines.push(`${file} ${size} ${mtime?.getTime()}`);
  }
  // Two 32-bit FNV-1a hashes (different offsets): a name, not a defence (the files are the
  // developer's own); cheaper at start than the first use of the crypto API.
  let a = 0x811c9dc5;
  let b = 0x01000193;
  const text = lines.sort().join("\n");
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193);
  }
  return (a >>> 0).toString(16).padStart(8, "0") + (b >>> 0).toString(16).padStart(8, "0");
}

/** The directory of the bundle of the current sources, made if there is none yet. */
async function currentBundle(): Promise<string> {
  const dir = `${BUNDLES}/${sourcesStamp()}`;
  try {
    Deno.statSync(`${dir}/main.js`);
    return dir;
  } catch {
    // Not made yet.
  }
  console.error("start: bundling the sources (they changed since the last start)");
  const { bundle } = await import("./cli/bundle.ts");
  // Made aside and renamed into place: a start running at the same time never sees half of it.
  const partial = `${dir}.${Deno.pid}.partial`;
  await bundle(ROOT, partial);
  try {
    Deno.renameSync(partial, dir);
  } catch {
    // Another start made it first: theirs is the same bundle.
    Deno.removeSync(partial, { recursive: true });
  }
  removeOldBundles();
  return dir;
}

/** Bundles kept: a server started from an earlier one still loads its files (lazily). */
const KEPT_BUNDLES = 4;

/** How old a half-made bundle must be to be taken for one whose start died. */
const STALE_PARTIAL_MS = 10 * 60 * 1000;

/** Removes all but the {@link KEPT_BUNDLES} newest bundles, and half-made ones long left. */
function removeOldBundles(): void {
  const now = Date.now();
  const bundles: { path: string; made: number }[] = [];
  for (const entry of Deno.readDirSync(BUNDLES)) {
    const path = `${BUNDLES}/${entry.name}`;
    const made = Deno.statSync(path).mtime?.getTime() ?? 0;
    if (!entry.name.endsWith(".partial")) bundles.push({ path, made });
    else if (now - made > STALE_PARTIAL_MS) Deno.removeSync(path, { recursive: true });
  }
  bundles.sort((a, b) => b.made - a.made);
  for (const { path } of bundles.slice(KEPT_BUNDLES)) Deno.removeSync(path, { recursive: true });
}

const { main } = await import(`${await currentBundle()}/main.js`);
Deno.exit(await main(Deno.args));
