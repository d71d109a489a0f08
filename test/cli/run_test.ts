import { assertEquals, assertIncludes } from "../_assert.ts";
import { fixture, ROOT } from "../_fixtures.ts";
import { tempDir } from "../_temp.ts";

/** Runs `src/main.ts run ARGS` as a process, feeding `stdin`. */
async function run(
  args: string[],
  options: { stdin?: Uint8Array; cwd?: string; env?: Record<string, string> } = {},
) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", `${ROOT}src/main.ts`, "run", ...args],
    cwd: options.cwd ?? ROOT,
    env: options.env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  if (options.stdin) await writer.write(options.stdin);
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  return {
    code,
    stdout,
    text: new TextDecoder().decode(stdout),
    stderr: new TextDecoder().decode(stderr),
  };
}

Deno.test("run: stdin and stdout are the process's, byte for byte", async () => {
  const input = new Uint8Array(100_000).map((_, i) => (i * 31) % 256);
  const result = await run([fixture("cat.wasm")], { stdin: input });
  assertEquals(result.code, 0);
  assertEquals(result.stdout, input);
});

Deno.test("run: the exit code is the guest's; a trap exits 134 with the reason", async () => {
  const three = await run([fixture("exits.wasm"), "--invoke", "exit_three"]);
  assertEquals(three.code, 3);
  assertEquals(three.stderr, "exits: failing on purpose with 3\n");
  const zero = await run([fixture("exits.wasm"), "--invoke", "exit_zero"]);
  assertEquals([zero.code, zero.text], [0, "Content-Type: text/plain\n\nexited with 0\n"]);
  const trap = await run([fixture("exits.wasm"), "--invoke", "trap"]);
  assertEquals(trap.code, 134);
  assertIncludes(trap.stderr, "trap");
});

Deno.test("run: an exit code above 255 exits 1 and says so, never 0", async () => {
  const dir = await tempDir("wagi-run-");
  for (const code of [256, 512, 70000]) {
    const path = `${dir}/exit${code}.wat`;
    await Deno.writeTextFile(
      path,
      `(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (func (export "_start") (call $exit (i32.const ${code}))))`,
    );
    const result = await run([path]);
    assertEquals(result.code, 1, `proc_exit(${code})`);
    assertIncludes(result.stderr, `exit code ${code} is outside 0-255; exiting with 1`);
  }
});

Deno.test("run: argv[0] is the module as given, only --env variables are seen", async () => {
  const result = await run([
    "modules/env.wasm",
    "--env",
    "A=1",
    "--env=B=two words",
    "--",
    "x",
    "--y",
  ], {
    env: { SECRET_HOST_VARIABLE: "leak" },
  });
  assertEquals(result.code, 0);
  assertIncludes(
    result.text,
    "### argv\n0 = modules/env.wasm\n1 = x\n2 = --y\n### env\nA = 1\nB = two words\n### body\n",
  );
});

Deno.test("run: --dir HOST::/ preopens HOST as /, relative to INIT_CWD", async () => {
  const result = await run([fixture("volume.wasm"), "--dir", "fixtures/data::/data"], {
    env: { INIT_CWD: `${ROOT}test` },
    cwd: "/",
  });
  assertEquals(result.code, 0);
  assertIncludes(result.text, "read: hello from the volume\n");
});

Deno.test("run: usage errors exit 2 and name the problem; --version prints the version", async () => {
  const missing = await run([]);
  assertEquals(missing.code, 2);
  assertIncludes(missing.stderr, "run needs a module");
  const badDir = await run([fixture("cat.wasm"), "--dir", "/no/such/dir"]);
  assertEquals(badDir.code, 2);
  assertIncludes(badDir.stderr, "'/no/such/dir' is not a directory");
  const version = await run(["--version"]);
  assertEquals(version.code, 0);
  assertIncludes(version.text, "wagi-deno ");
});
