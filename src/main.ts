/**
 * wagi-deno's command line: `serve` (the default, WAGI's flags).
 * @module
 */

import { ConfigError } from "./config/modules_toml.ts";
import { ModuleLoadError } from "./executor/module_cache.ts";
import { EnvError } from "./cli/env_file.ts";
import { parseServeArgs, SERVE_USAGE, UsageError } from "./cli/serve_options.ts";
import { serve } from "./cli/serve.ts";
import { stderrLogger } from "./server/logger.ts";
import denoJson from "../deno.json" with { type: "json" };

/** The version printed by `--version`. */
export const VERSION = denoJson.version;

/** Runs the command line; returns the process exit code. */
export async function main(args: string[]): Promise<number> {
  if (args.includes("--version") || args.includes("-V")) {
    console.log(`wagi-deno ${VERSION}`);
    return 0;
  }
  if (args.includes("--help") || args.includes("-h")) {
    console.log(SERVE_USAGE);
    return 0;
  }
  const rest = args[0] === "serve" ? args.slice(1) : args;
  try {
    // Under `deno task`, the user's directory is INIT_CWD; relative paths resolve against it.
    const startDir = Deno.env.get("INIT_CWD") ?? Deno.cwd();
    const options = parseServeArgs(rest, (name) => Deno.env.get(name), startDir, Deno.cwd());
    await serve(options, stderrLogger);
    return 0;
  } catch (error) {
    if (
      error instanceof UsageError || error instanceof ConfigError ||
      error instanceof ModuleLoadError || error instanceof EnvError
    ) {
      console.error(`error: ${error.message}`);
      return error instanceof UsageError ? 2 : 1;
    }
    throw error;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
