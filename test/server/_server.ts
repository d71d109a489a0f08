/**
 * Starts the real server as a child process on a free loopback port, for integration tests.
 * @module
 */

import { ROOT } from "../_fixtures.ts";
import { tempDirSync } from "../_temp.ts";

/**
 * The module cache of the servers a test file starts (shared by them, removed at exit), so
 * that tests neither read nor fill the user's own.
 */
let moduleCache: string | undefined;

/** A server child process. */
export interface ServerProcess {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  child: Deno.ChildProcess;
  /** Everything the server printed so far on stdout and stderr. */
  output(): { stdout: string; stderr: string };
  /** Sends SIGTERM and waits for the exit status. */
  stop(): Promise<Deno.CommandStatus>;
}

/** What a failed start printed, and its exit code. */
export interface StartFailure {
  code: number;
  stdout: string;
  stderr: string;
}

function collect(stream: ReadableStream<Uint8Array>, sink: { text: string }, onText: () => void) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  return (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      sink.text += value;
      onText();
    }
  })();
}

/** How a test server is started. */
export interface StartOptions {
  env?: Record<string, string>;
  cwd?: string;
  /** False: no `-l 127.0.0.1:0` is added. */
  defaultListen?: boolean;
  /** The process's limit on open descriptors (soft and hard), set with `ulimit -n`. */
  openFiles?: number;
}

/** Spawns `src/main.ts` with `args` (plus `-l 127.0.0.1:0` unless given) and waits for Ready. */
export async function startServer(
  args: string[],
  options: StartOptions = {},
): Promise<ServerProcess> {
  const result = await spawnServer(args, options);
  if ("code" in result) {
    throw new Error(`server exited with ${result.code} before ready:\n${result.stderr}`);
  }
  return result;
}

/** Like {@link startServer}, but a server that exits before it is ready is a result. */
export async function spawnServer(
  args: string[],
  options: StartOptions = {},
): Promise<ServerProcess | StartFailure> {
  const given = args.includes("-l") || args.includes("--listen") || options.defaultListen === false;
  const listen = given ? [] : ["-l", "127.0.0.1:0"];
  const cache = args.includes("--module-cache")
    ? []
    : ["--module-cache", moduleCache ??= tempDirSync("wagi-module-cache-")];
  const command = [
    Deno.execPath(),
    "run",
    "--allow-all",
    "--unstable-no-legacy-abort",
    `${ROOT}src/main.ts`,
    ...args,
    ...listen,
    ...cache,
  ];
  // With a descriptor limit, through a shell that sets it and then becomes the server.
  const [program, ...programArgs] = options.openFiles === undefined
    ? command
    : ["bash", "-c", `ulimit -n ${options.openFiles} && exec "$@"`, "server", ...command];
  const child = new Deno.Command(program, {
    args: programArgs,
    cwd: options.cwd ?? ROOT,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = { text: "" };
  const stderr = { text: "" };
  let wake = () => {};
  const done = Promise.all([
    collect(child.stdout, stdout, () => wake()),
    collect(child.stderr, stderr, () => wake()),
  ]);
  const status = child.status;
  let exited: Deno.CommandStatus | undefined;
  status.then((s) => (exited = s));
  for (;;) {
    const ready = stdout.text.match(/Ready: serving on (\S+)/);
    if (ready) {
      return {
        url: ready[1],
        child,
        output: () => ({ stdout: stdout.text, stderr: stderr.text }),
        async stop() {
          try {
            child.kill("SIGTERM");
          } catch { /* already gone */ }
          const s = await status;
          await done;
          return s;
        },
      };
    }
    if (exited) {
      await done;
      return { code: exited.code, stdout: stdout.text, stderr: stderr.text };
    }
    await new Promise<void>((resolve) => {
      wake = resolve;
      setTimeout(resolve, 50);
    });
  }
}
