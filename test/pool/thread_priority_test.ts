import { assertEquals } from "../_assert.ts";

Deno.test({
  name: "a pool worker's thread runs at a lower priority; the server's thread keeps its own",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const worker = new Worker(new URL("./_nice_worker.ts", import.meta.url), { type: "module" });
    try {
      const report = await new Promise<{ lowered: boolean; thread: number; process: number }>(
        (resolve) => (worker.onmessage = (event) => resolve(event.data)),
      );
      // A test run that is itself niced past 10 stays where it is.
      assertEquals(report.lowered, true);
      assertEquals(report.thread, Math.max(10, report.process));
    } finally {
      worker.terminate();
    }
  },
});
