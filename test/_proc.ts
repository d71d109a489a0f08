/**
 * What a test reads of a server process from /proc: its CPU time, its worker threads, and how
 * busy it is while nothing is asked of it.
 * @module
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A server's CPU time so far (user + system, every thread), in seconds. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // Fields after the command name (which may hold spaces): utime and stime are the 12th and
  // 13th, in clock ticks of 1/100 s on Linux.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * The number of worker threads of a process (Deno names them `worker-N`): the runtime's own
 * threads come and go with its I/O, the pool's should not.
 */
export async function threads(pid: number): Promise<number> {
  let count = 0;
  for await (const task of Deno.readDir(`/proc/${pid}/task`)) {
    const name = await Deno.readTextFile(`/proc/${pid}/task/${task.name}/comm`).catch(() => "");
    if (name.startsWith("worker-")) count++;
  }
  return count;
}

/**
 * The share of one core the server uses while nothing is asked of it, over `ms`: a guest
 * still spinning would show as about 1 per guest.
 */
export async function idleLoad(pid: number, ms = 2000): Promise<number> {
  const before = await cpuSeconds(pid);
  await sleep(ms);
  return (await cpuSeconds(pid) - before) / (ms / 1000);
}

/** A process's resident memory now, in bytes. */
export async function rssBytes(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(status.match(/^VmRSS:\s+(\d+) kB/m)![1]) * 1024;
}

/** At most this share of one core counts as idle (timers, the clock: a few hundredths). */
export const IDLE = 0.05;
