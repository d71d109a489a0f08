import { assertEquals, assertIncludes, assertOk } from "./_assert.ts";
import { ROOT } from "./_fixtures.ts";
import { freePort } from "./_net.ts";
import { tempDir } from "./_temp.ts";

const DENO_DIR = Deno.env.get("DENO_DIR") ??
  `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME")}/.cache`}/deno`;

/** Runs `deno task start` in `app` until `/` answers; returns what it printed on stderr. */
async function startOnce(app: string): Promise<string> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "start"],
    cwd: app,
    // The server's module cache under `app` (not the user's); Deno's own cache as it was.
    env: {
      PORT: String(port),
      DENO_NO_UPDATE_CHECK: "1",
      DENO_DIR,
      XDG_CACHE_HOME: `${app}/.cache`,
    },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const response = await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined);
      if (response) {
        assertEquals(await response.text(), "Oh hi world\n");
        break;
      }
      assertOk(Date.now() < deadline, "deno task start did not answer within 30 s");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    child.kill("SIGTERM");
  }
  assertEquals((await child.status).code, 0, "a SIGTERM'd start exits 0");
  return await stderr;
}

Deno.test("deno task start runs a bundle of the sources, made again only when they change", async () => {
  const app = await tempDir("wagi-start-");
  for (const kept of ["deno.json", "deno.lock", "src", "modules"]) {
    await new Deno.Command("cp", { args: ["-r", `${ROOT}${kept}`, `${app}/${kept}`] }).output();
  }
  const bundles = () => [...Deno.readDirSync(`${app}/.bundle`)].map((entry) => entry.name);

  assertIncludes(await startOnce(app), "bundling the sources");
  const [first] = bundles();
  assertOk(first, "the bundle is kept for the next start");

  const again = await startOnce(app);
  assertOk(
    !again.includes("bundling"),
    `a start with unchanged sources bundles nothing:\n${again}`,
  );
  assertEquals(bundles(), [first]);

  // A changed source (its size and modification time) is bundled anew; the old bundle stays
  // for a server that may still run from it, until newer ones push it out.
  await Deno.writeTextFile(`${app}/src/cli/start_trace.ts`, "\n// changed\n", { append: true });
  assertIncludes(await startOnce(app), "bundling the sources");
  const after = bundles();
  assertEquals(after.length, 2);
  assertOk(after.includes(first), "the earlier bundle is kept");
});
