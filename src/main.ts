/**
 * wagi-deno's command line: `serve` (the default, WAGI's flags), `run` (one WASI command) and
 * `push` (a module to an OCI registry).
 * @module
 */

import { ConfigError } from "./config/modules_toml.ts";
import { ModuleLoadError } from "./run/module_cache.ts";
import { EnvError } from "./cli/env_file.ts";
import { parseServeArgs, SERVE_USAGE, UsageError } from "./cli/serve_options.ts";
import { serve, StartupError } from "./cli/serve.ts";
import { stderrLogger } from "./server/logger.ts";
import denoJson from "../deno.json" with { type: "json" };
import { startTrace } from "./cli/start_trace.ts";

// Every module of the program is loaded and evaluated by now.
startTrace.mark("module graph");

/** The version printed by `--version`. */
export const VERSION = denoJson.version;

/** Runs the command line; returns the process exit code. */
export async function main(args: string[]): Promise<number> {
  const command = args[0] === "run" || args[0] === "serve" || args[0] === "push"
    ? args[0]
    : "serve";
  const rest = args[0] === command ? args.slice(1) : args;
  // The guest's own arguments (after `--`) are never ours to interpret.
  const own = rest.includes("--") ? rest.slice(0, rest.indexOf("--")) : rest;
  if (own.includes("--version") || own.includes("-V")) {
    console.log(`wagi-deno ${VERSION}`);
    return 0;
  }
  if (own.includes("--help") || own.includes("-h")) {
    // `run` and `push` are loaded only when used: serving (and its start) does not need them.
    const usage = command === "push"
      ? (await import("./cli/push.ts")).PUSH_USAGE
      : command === "run"
      ? (await import("./cli/run.ts")).RUN_USAGE
      : SERVE_USAGE;
    console.log(usage);
    return 0;
  }
  // Under `deno task`, the user's directory is INIT_CWD; relative paths resolve against it.
  const startDir = Deno.env.get("INIT_CWD") ?? Deno.cwd();
  const getEnv = (name: string) => Deno.env.get(name);
  try {
    if (command === "run") {
      const { parseRunArgs, runCommand } = await import("./cli/run.ts");
      return await runCommand(parseRunArgs(rest, startDir, getEnv));
    }
    if (command === "push") {
      const { parsePushArgs, pushCommand } = await import("./cli/push.ts");
      return await pushCommand(parsePushArgs(rest, startDir));
    }
    await serve(parseServeArgs(rest, getEnv, startDir, Deno.cwd()), stderrLogger);
    return 0;
  } catch (error) {
    if (
      error instanceof UsageError || error instanceof ConfigError ||
      error instanceof ModuleLoadError || error instanceof EnvError ||
      error instanceof StartupError
    ) {
      console.error(`error: ${error.message}`);
      return error instanceof UsageError ? 2 : 1;
    }
    throw error;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
