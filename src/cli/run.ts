/**
 * The `run` command, like `wasmtime run`: one WASI command module with our host, the process's
 * stdio as the guest's, and the guest's exit code as the process's.
 * @module
 */

import { componentParts } from "../run/module_component.ts";
import { loadComponentLazily } from "./components.ts";
import { isAbsolute, join } from "../paths.ts";
import { ModuleCache } from "../run/module_cache.ts";
import { runGuest } from "../run/guest.ts";
import { DEFAULT_OUTBOUND } from "../outbound_http/names.ts";
import type { Preopen } from "../wasi/state.ts";
import { HandleSink, HandleSource } from "../wasi/streams.ts";
import { parseVolume } from "../config/volumes.ts";
import { whyNoSandbox } from "../wasi/linux_fs.ts";
import { UsageError } from "./serve_options.ts";

/** What `run` runs. */
export interface RunOptions {
  /** The module's path as given (the guest's argv[0]). */
  module: string;
  /** The module's path on the host. */
  modulePath: string;
  preopens: Preopen[];
  env: [string, string][];
  /** Guest arguments after argv[0]. */
  args: string[];
  /** Exported function to call. */
  invoke: string;
  /** Hosts the module may reach with outbound HTTP (`--allowed-host`); none by default. */
  allowedHosts?: string[];
}

/** The help text of `run`. */
export const RUN_USAGE =
  `Usage: wagi-deno run MODULE.wasm [--dir HOST[::GUEST][:ro]]... [--env K[=V]]... [-- ARGS...]

  --dir HOST[::GUEST]   preopen host directory HOST at guest path GUEST (default: HOST as given);
                        append :ro to make it read-only
  --env K=V             a guest environment variable (K alone copies the host's value)
  --invoke NAME         call this export instead of _start
  --allowed-host URL    let the module's outbound HTTP reach this host (repeatable;
                        insecure:allow-all allows every host)
  -- ARGS...            the guest's arguments after argv[0] (the module path)

The guest gets no other environment; its exit code is the process's (134 after a trap, 1 for
a code above 255).
`;

/** Parses `run`'s arguments; relative paths resolve against `startDir`. */
export function parseRunArgs(
  args: readonly string[],
  startDir: string,
  getEnv: (name: string) => string | undefined,
): RunOptions {
  const resolve = (path: string) => (isAbsolute(path) ? path : join(startDir, path));
  let module: string | undefined;
  const guestArgs: string[] = [];
  const preopens: Preopen[] = [];
  const env: [string, string][] = [];
  let invoke = "_start";
  let allowedHosts: string[] | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      guestArgs.push(...args.slice(i + 1));
      break;
    }
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    if (flag === "--dir" || flag === "--env" || flag === "--invoke" || flag === "--allowed-host") {
      let value: string;
      if (eq !== -1) value = arg.slice(eq + 1);
      else {
        if (i + 1 >= args.length) throw new UsageError(`${flag} needs a value\n\n${RUN_USAGE}`);
        value = args[++i];
      }
      if (flag === "--invoke") invoke = value;
      else if (flag === "--allowed-host") allowedHosts = [...(allowedHosts ?? []), value];
      else if (flag === "--dir") {
        const { host, guest, readOnly } = parseDirFlag(value);
        preopens.push({ guestPath: guest, hostPath: resolve(host), readOnly });
      } else {
        const at = value.indexOf("=");
        if (at === 0) throw new UsageError(`--env '${value}': the variable name is empty`);
        env.push(
          at === -1 ? [value, getEnv(value) ?? ""] : [value.slice(0, at), value.slice(at + 1)],
        );
      }
    } else if (module === undefined && !arg.startsWith("-")) module = arg;
    else if (module !== undefined) guestArgs.push(arg);
    else throw new UsageError(`unknown argument '${arg}'\n\n${RUN_USAGE}`);
  }
  if (module === undefined) throw new UsageError(`run needs a module\n\n${RUN_USAGE}`);
  const noSandbox = preopens.length > 0 ? whyNoSandbox() : undefined;
  if (noSandbox) throw new UsageError(`--dir is refused rather than served unsafely: ${noSandbox}`);
  for (const preopen of preopens) {
    let isDirectory = false;
    try {
      isDirectory = Deno.statSync(preopen.hostPath).isDirectory;
    } catch { /* reported below */ }
    if (!isDirectory) throw new UsageError(`--dir '${preopen.hostPath}' is not a directory`);
  }
  return {
    module,
    modulePath: resolve(module),
    preopens,
    env,
    args: guestArgs,
    invoke,
    allowedHosts,
  };
}

/** `HOST`, `HOST::GUEST`, either with a trailing `:ro`. */
function parseDirFlag(value: string): { host: string; guest: string; readOnly: boolean } {
  const { path, readOnly } = parseVolume(value);
  const split = path.indexOf("::");
  return split === -1
    ? { host: path, guest: path, readOnly }
    : { host: path.slice(0, split), guest: path.slice(split + 2), readOnly };
}

/** Exit status after a trap, as `wasmtime run` gives on Unix (128 + SIGABRT). */
export const TRAP_EXIT_CODE = 134;

/** Runs the module with the process's stdio; returns the exit code for the process. */
export async function runCommand(options: RunOptions): Promise<number> {
  const module = await new ModuleCache({ loadComponent: loadComponentLazily })
    .load(options.modulePath);
  const wasi = {
    args: [options.module, ...options.args],
    env: options.env,
    stdin: new HandleSource(Deno.stdin),
    stdout: new HandleSink(Deno.stdout),
    stderr: new HandleSink(Deno.stderr),
    preopens: options.preopens,
  };
  const component = componentParts(module);
  let end;
  if (component) {
    if (component.world !== "command") {
      console.error(`error: ${options.module}: a wasi:http component serves requests: use serve`);
      return 2;
    }
    const { ComponentRunner } = await import("../component/runner.ts");
    end = await new ComponentRunner(module, component).run(wasi);
  } else {
    end = await runGuest(module, options.invoke, wasi, {
      ...DEFAULT_OUTBOUND,
      allowedHosts: options.allowedHosts,
    });
  }
  if (end.failure !== undefined) {
    console.error(`error: ${options.module}: ${end.failure}`);
    return TRAP_EXIT_CODE;
  }
  // A process exits with 0-255: a larger code would wrap (256 to 0, a success).
  if (end.exitCode > 255) {
    console.error(
      `error: ${options.module}: exit code ${end.exitCode} is outside 0-255; exiting with 1`,
    );
    return 1;
  }
  return end.exitCode;
}
