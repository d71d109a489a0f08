/// <reference lib="deno.worker" />
// Lowers its own thread's priority, then reports the nice values of itself and of the process.
import { lowerThreadPriority } from "../../src/pool/thread_priority.ts";

/** The nice value in a /proc stat line (the fields after the command's closing parenthesis). */
const niceOf = (stat: string) => Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);

const lowered = lowerThreadPriority(10);
self.postMessage({
  lowered,
  thread: niceOf(Deno.readTextFileSync("/proc/thread-self/stat")),
  process: niceOf(Deno.readTextFileSync("/proc/self/stat")),
});
