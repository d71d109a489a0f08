/**
 * Building the route handlers from a loaded configuration: compile every module through the
 * cache, ask modules that export `_routes` for their sub-routes (a run like any other, under
 * the module's timeout), and order it all (docs/wagi.md, "Routes").
 * @module
 */

import type { ModuleEntry, ModulesConfig } from "../config/modules_toml.ts";
import { ModuleCache, ModuleLoadError } from "../run/module_cache.ts";
import type { Executor } from "../run/contract.ts";
import { type ModuleInfo, moduleInfo } from "../run/module_info.ts";
import {
  joinSubroute,
  parseRoute,
  parseRoutesOutput,
  type RoutePattern,
} from "../routing/route.ts";
import { sha256Hex } from "../digest.ts";
import { DEFAULT_OUTBOUND, type OutboundOptions } from "../outbound_http/names.ts";
import type { Limits } from "../config/limits.ts";
import { componentParts, type ComponentWorld } from "../run/module_component.ts";

/** Everything needed to serve one route. */
export interface RouteHandler {
  pattern: RoutePattern;
  /** `X_MATCHED_ROUTE`: the route as written, or a sub-route's full path. */
  matchedRoute: string;
  entry: ModuleEntry;
  entrypoint: string;
  module: WebAssembly.Module;
  /** sha256 hex of the entry's route: the folder of its stderr log. */
  logKey: string;
  /** How long a run may take. */
  timeoutMs: number;
  /** What the module may do with outbound HTTP. */
  outbound: OutboundOptions;
  /** Whether the module can read argv and its environment: if not, neither is built. */
  reads: ModuleInfo["reads"];
  /** Set when the module is a WASI 0.2 component: the world it serves. */
  component?: ComponentWorld;
}

/** What a component reads is not in its core modules' imports: argv and environment are built. */
const READS_ALL: ModuleInfo["reads"] = { args: true, env: true };

/**
 * Checks what an entry says against the module it names being a component (of `world`) or
 * not; throws saying what does not fit.
 */
function checkKind(entry: ModuleEntry, world: ComponentWorld | undefined): void {
  if (!world) {
    if (entry.kind) {
      throw new ModuleLoadError(
        `${entry.module}: 'kind = "${entry.kind}"' is for WASI 0.2 components; this is a core ` +
          "(WAGI) module",
      );
    }
    return;
  }
  const what = world === "http" ? "a wasi:http (proxy) component" : "a wasi:cli command component";
  if (entry.kind && entry.kind !== world) {
    throw new ModuleLoadError(`${entry.module}: 'kind = "${entry.kind}"', but it is ${what}`);
  }
  if (entry.entrypointGiven) {
    throw new ModuleLoadError(
      `${entry.module}: 'entrypoint' does not apply: it is ${what}, run through its export`,
    );
  }
  if (entry.volumes.length > 0) {
    throw new ModuleLoadError(
      `${entry.module}: 'volumes' are not served to components yet (it is ${what})`,
    );
  }
}

/** Prefixes a load error with the file, line, index and route of the entry it belongs to. */
function entryError(config: ModulesConfig, entry: ModuleEntry, error: unknown): ModuleLoadError {
  let message = (error as Error).message;
  // A pulled module is named by its reference, not by the file it was pulled to.
  if (entry.oci) message = message.replaceAll(entry.modulePath, entry.module);
  return new ModuleLoadError(
    `${config.file}:${entry.line}: [[module]] #${entry.index} (route '${entry.route}'): ` +
      message,
  );
}

/** Most `_routes` output read: a route table, not a response. */
const MAX_ROUTES_OUTPUT = 1024 * 1024;

/**
 * Runs a module's `_routes` export (no args, no env, no volumes, no network) through
 * `executor`, under the module's timeout, and returns its sub-routes.
 */
async function discoverSubroutes(
  entry: ModuleEntry,
  module: WebAssembly.Module,
  timeoutMs: number,
  executor: Executor,
) {
  const exported = WebAssembly.Module.exports(module).some((e) =>
    e.name === "_routes" && e.kind === "function"
  );
  if (!exported) return [];
  const execution = executor.run({
    module,
    entrypoint: "_routes",
    args: [],
    env: [],
    preopens: [],
    stdin: null,
    timeoutMs,
    maxStdin: 0,
    maxOutput: MAX_ROUTES_OUTPUT,
    outbound: DEFAULT_OUTBOUND,
  });
  const [stdout, outcome] = await Promise.all([
    new Response(execution.stdout).arrayBuffer(),
    execution.done,
  ]);
  if (outcome.failure || outcome.exitCode !== 0) {
    const why = outcome.stop === "timeout"
      ? `did not answer within its timeout of ${timeoutMs} ms`
      : outcome.failure ?? `exited with ${outcome.exitCode}`;
    throw new ModuleLoadError(`${entry.module}: _routes ${why}`);
  }
  try {
    return parseRoutesOutput(new TextDecoder().decode(stdout));
  } catch (error) {
    throw new ModuleLoadError(`${entry.module}: ${(error as Error).message}`);
  }
}

/**
 * The handlers of a configuration in match order: each entry's sub-routes (the last printed
 * first) before the entry itself, entries in file order. Modules are compiled through `cache`
 * and `_routes` run through `executor`. Throws naming the entry on failure.
 */
export async function buildHandlers(
  config: ModulesConfig,
  defaults: Limits,
  cache: ModuleCache,
  executor: Executor,
): Promise<RouteHandler[]> {
  // Each a digest of its own, made while the modules load (one after another, 50 routes took
  // ~10 ms of a start).
  const logKeys = Promise.all(config.entries.map((entry) => sha256Hex(entry.route)));
  const modules = await Promise.all(config.entries.map(async (entry) => {
    try {
      return await cache.load(
        entry.modulePath,
        entry.memoryLimitBytes ?? defaults.memoryLimitBytes,
      );
    } catch (error) {
      throw entryError(config, entry, error);
    }
  }));
  const handlers: RouteHandler[] = [];
  for (const [i, entry] of config.entries.entries()) {
    const module = modules[i];
    const timeoutMs = entry.timeoutMs ?? defaults.timeoutMs;
    const outbound: OutboundOptions = {
      allowedHosts: entry.allowedHosts,
      maxConcurrency: entry.httpMaxConcurrency,
      timeoutMs: entry.httpTimeoutMs ?? DEFAULT_OUTBOUND.timeoutMs,
      maxResponseBytes: entry.httpMaxResponseBytes ?? DEFAULT_OUTBOUND.maxResponseBytes,
    };
    const logKey = (await logKeys)[i];
    const component = componentParts(module)?.world;
    // The environment a component sees is what it is given, like argv.
    const reads = component ? READS_ALL : moduleInfo(module).reads;
    let subroutes;
    try {
      checkKind(entry, component);
      // A component has no `_routes` export to ask: its routes are the entry's.
      subroutes = component ? [] : await discoverSubroutes(entry, module, timeoutMs, executor);
    } catch (error) {
      throw entryError(config, entry, error);
    }
    for (const sub of subroutes.reverse()) {
      const full = joinSubroute(entry.route, sub.route);
      handlers.push({
        pattern: parseRoute(full),
        matchedRoute: full,
        entry,
        entrypoint: sub.entrypoint,
        module,
        logKey,
        timeoutMs,
        outbound,
        reads,
      });
    }
    handlers.push({
      pattern: parseRoute(entry.route),
      matchedRoute: entry.route,
      entry,
      entrypoint: entry.entrypoint,
      module,
      logKey,
      timeoutMs,
      outbound,
      reads,
      component,
    });
  }
  return handlers;
}
