import { assertEquals } from "../_assert.ts";
import { openFileLimit } from "../../src/cli/open_file_limit.ts";

Deno.test("the open-file limit read is the soft limit Deno raised to the hard one", async () => {
  const script = `import { openFileLimit } from "${
    new URL("../../src/cli/open_file_limit.ts", import.meta.url).href
  }"; console.log(openFileLimit());`;
  const { stdout } = await new Deno.Command("bash", {
    args: [
      "-c",
      `ulimit -Sn 512 && ulimit -Hn 4096 && exec "$0" eval "$1"`,
      Deno.execPath(),
      script,
    ],
  }).output();
  assertEquals(new TextDecoder().decode(stdout).trim(), "4096");
  assertEquals(typeof openFileLimit(), "number");
});
