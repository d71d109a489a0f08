import { assertEquals } from "../_assert.ts";
import { Reloader } from "../../src/server/reload.ts";
import type { Logger } from "../../src/server/logger.ts";

function recordingLogger(lines: string[]): Logger {
  const log = (level: string) => (message: string) => void lines.push(`${level}: ${message}`);
  return { info: log("info"), warn: log("warn"), error: log("error") };
}

Deno.test("reloader: one reload at a time; requests made while one waits share it", async () => {
  const lines: string[] = [];
  let loads = 0;
  const applied: number[] = [];
  let release = () => {};
  const reloader = new Reloader<number>({
    logger: recordingLogger(lines),
    load: async () => {
      const n = ++loads;
      if (n === 1) await new Promise<void>((resolve) => (release = resolve));
      return n;
    },
    apply: (n) => void applied.push(n),
  });
  const first = reloader.request("one");
  await new Promise((resolve) => setTimeout(resolve, 10));
  // The first is loading: these two wait, together, for one more reload.
  const second = reloader.request("two");
  const third = reloader.request("three");
  assertEquals(second, third);
  release();
  assertEquals(await Promise.all([first, second, third]), [true, true, true]);
  assertEquals(loads, 2);
  assertEquals(applied, [1, 2]);
});

Deno.test("reloader: a failed load switches nothing and says why", async () => {
  const lines: string[] = [];
  const applied: string[] = [];
  let failures = 0;
  const reloader = new Reloader<string>({
    logger: recordingLogger(lines),
    load: () => Promise.reject(new Error("modules.toml:3: broken")),
    apply: (c) => void applied.push(c),
    failed: () => void failures++,
  });
  assertEquals(await reloader.request("SIGHUP"), false);
  assertEquals(applied, []);
  assertEquals(failures, 1);
  assertEquals(
    lines.at(-1),
    "error: reload failed, still serving the configuration loaded before: modules.toml:3: broken",
  );
  reloader.stop();
  assertEquals(await reloader.request("after stop"), false);
});
