import { assertEquals, assertIncludes, assertOk } from "../_assert.ts";
import { runToEnd } from "../_run.ts";
import { compileFixture } from "../_fixtures.ts";

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

async function run(entrypoint: string) {
  return runToEnd({
    module: await compileFixture("exits.wasm"),
    entrypoint,
    args: [],
    env: [],
    stdin: new Uint8Array(),
    preopens: [],
  });
}

Deno.test("proc_exit(0) is a normal end with the output kept", async () => {
  const result = await run("exit_zero");
  assertEquals(result.exitCode, 0);
  assertEquals(result.failure, undefined);
  assertIncludes(decode(result.stdout), "exited with 0");
});

Deno.test("proc_exit(3) reports exit code 3 and keeps stderr", async () => {
  const result = await run("exit_three");
  assertEquals(result.exitCode, 3);
  assertEquals(result.failure, undefined);
  assertEquals(decode(result.stderr), "exits: failing on purpose with 3\n");
});

Deno.test("a trap is a failure that says so", async () => {
  const result = await run("trap");
  assertOk(result.failure);
  assertIncludes(result.failure, "trap");
});

Deno.test("a missing entrypoint is a failure naming it", async () => {
  const result = await run("no_such_function");
  assertEquals(result.failure, "module has no exported function 'no_such_function'");
});
