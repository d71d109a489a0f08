import { assertEquals } from "./_assert.ts";
import { openFileLimit } from "../src/open_files.ts";

Deno.test("the open-file limit read is the soft limit Deno raised to the hard one", async () => {
  const script = `import { openFileLimit } from "${
    new URL("../src/open_files.ts", import.meta.url).href
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

Deno.test("a thread may start only while descriptors are to spare, even when none is left to count them", async () => {
  const script = `import { roomForThread, THREAD_DESCRIPTORS } from "${
    new URL("../src/open_files.ts", import.meta.url).href
  }";
  const said = [roomForThread()];
  const files = [];
  try { for (;;) files.push(Deno.openSync("/dev/null")); } catch { /* none left */ }
  said.push(roomForThread());
  for (let i = 0; i < THREAD_DESCRIPTORS / 2; i++) files.pop().close();
  said.push(roomForThread());
  for (let i = 0; i < THREAD_DESCRIPTORS; i++) files.pop().close();
  said.push(roomForThread());
  console.log(JSON.stringify(said));`;
  const { stdout, stderr } = await new Deno.Command("bash", {
    args: ["-c", `ulimit -n 256 && exec "$0" eval "$1"`, Deno.execPath(), script],
  }).output();
  assertEquals(
    new TextDecoder().decode(stdout).trim(),
    "[true,false,false,true]",
    new TextDecoder().decode(stderr),
  );
});
