/**
 * Loading a configuration to the point where it can serve: parse `modules.toml`, check it,
 * fetch what it names remotely, compile every module and build the route handlers. Used at
 * start and by every reload, which switches only once this has succeeded.
 * @module
 */

import { loadModulesToml, type ModulesConfig } from "../config/modules_toml.ts";
import type { Limits } from "../config/limits.ts";
import type { ModuleCache } from "../run/module_cache.ts";
import type { Executor } from "../run/contract.ts";
import { buildHandlers, type RouteHandler } from "./handlers.ts";

/** A configuration ready to serve. */
export interface LoadedConfiguration {
  config: ModulesConfig;
  /** Its route handlers in match order. */
  handlers: RouteHandler[];
  /** The compiled modules its handlers run. */
  modules: Set<WebAssembly.Module>;
}

/** Where a configuration comes from and what loading it uses. */
export interface ConfigurationSource {
  configFile: string;
  /** Where relative paths resolve (as at start). */
  startDir: string;
  /** The server's default limits. */
  limits: Limits;
  cache: ModuleCache;
  /** Runs `_routes` exports. */
  executor: Executor;
  /** Checks a parsed configuration before any module loads; throws to refuse it. */
  check?: (config: ModulesConfig) => void;
  /** Turns the entries that name remote modules (`oci:`) into local files. */
  fetchRemote?: (config: ModulesConfig) => Promise<void>;
}

/** Loads the configuration of `source`; throws naming the file, line and reason on failure. */
export async function loadConfiguration(
  source: ConfigurationSource,
): Promise<LoadedConfiguration> {
  const config = await loadModulesToml(source.configFile, source.startDir);
  source.check?.(config);
  await source.fetchRemote?.(config);
  const handlers = await buildHandlers(config, source.limits, source.cache, source.executor);
  return { config, handlers, modules: new Set(handlers.map((h) => h.module)) };
}
