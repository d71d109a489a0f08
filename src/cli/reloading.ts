/**
 * Hot reload for `serve`: SIGHUP and `--watch` load the configuration again and switch to it
 * once everything in it is ready; modules whose bytes did not change are not compiled again,
 * and what only the configuration before used is let go of.
 * @module
 */

import type { ModulesConfig } from "../config/modules_toml.ts";
import type { InlineVariants } from "../inline/variants.ts";
import type { RoutingTable } from "../routing/table.ts";
import type { ModuleCache } from "../run/module_cache.ts";
import type { Executor } from "../run/contract.ts";
import {
  type ConfigurationSource,
  loadConfiguration,
  type LoadedConfiguration,
} from "../server/configuration.ts";
import type { RouteHandler } from "../server/handlers.ts";
import type { Logger } from "../server/logger.ts";
import type { Metrics } from "../server/metrics.ts";
import { Reloader } from "../server/reload.ts";
import { FileWatcher } from "./watch.ts";

/** What a reload replaces and what it needs. */
export interface ReloadingOptions {
  /** How the configuration loads (as at start). */
  source: ConfigurationSource;
  /** The configuration loaded at start. */
  loaded: LoadedConfiguration;
  table: RoutingTable<RouteHandler>;
  cache: ModuleCache;
  variants: InlineVariants;
  executor: Executor;
  metrics?: Metrics;
  /** Watch the configuration and module files (`--watch`). */
  watch: boolean;
  /** Reload on SIGHUP (default). */
  signals?: boolean;
  /** Told after a reload switched to its configuration, with why it was asked for. */
  onSwitched?: (why: string) => void;
  logger: Logger;
  /** Prints the route table of a configuration switched to. */
  printRoutes: (handlers: readonly RouteHandler[]) => void;
}

/** The files whose change `--watch` reloads for: the configuration and its local modules. */
function watchedFiles(config: ModulesConfig): string[] {
  return [config.file, ...config.entries.filter((e) => !e.oci).map((e) => e.modulePath)];
}

/** Starts reloading on SIGHUP (and file changes with `watch`); `stop` ends it. */
export function startReloading(options: ReloadingOptions): {
  /** Reloads now (what SIGHUP does); resolves to whether it switched. */
  reload: (why: string) => Promise<boolean>;
  stop: () => void;
} {
  const { cache, executor, metrics, logger } = options;
  let current = options.loaded;
  const countReload = metrics?.counter(
    "wagi_reloads_total",
    "Configuration reloads since start that switched to the new configuration.",
    // Every server isolate reloads for the same request.
    "max",
  );
  const countFailure = metrics?.counter(
    "wagi_reload_failures_total",
    "Configuration reloads that failed; the configuration before kept serving.",
    "max",
  );
  let lastOk = 1;
  metrics?.gauge({
    name: "wagi_config_last_reload_successful",
    help: "1 when the last reload switched to its configuration (or none was tried), else 0.",
    value: () => lastOk,
    // 1 only when every server isolate switched.
    merge: "min",
  });
  const watcher = options.watch
    ? new FileWatcher(
      (changed) => reloader.request(`changed: ${changed.join(", ")}`),
      300,
      (message) => logger.warn(message),
    )
    : undefined;
  const reloader = new Reloader<LoadedConfiguration & { compiled: number }>({
    logger,
    load: async () => {
      const compiledBefore = cache.compilations;
      // Files are read again; modules are still found by their bytes.
      cache.forgetPaths();
      try {
        const next = await loadConfiguration(options.source);
        // Switch only once the new modules can run on the server's thread too.
        await options.variants.settled();
        return { ...next, compiled: cache.compilations - compiledBefore };
      } catch (error) {
        cache.keepOnly(current.modules);
        throw error;
      }
    },
    apply: (next, took, why) => {
      const before = current;
      current = next;
      options.table.replace(next.handlers);
      metrics?.useRoutes(next.handlers.map((h) => [h, h.matchedRoute] as const));
      cache.keepOnly(next.modules);
      executor.forget([...before.modules].filter((module) => !next.modules.has(module)));
      countReload?.();
      lastOk = 1;
      watcher?.watch(watchedFiles(next.config));
      logger.info(
        `reloaded in ${Math.round(took)} ms: ${next.handlers.length} routes, ` +
          `${next.modules.size} modules (${next.compiled} compiled anew)`,
      );
      options.printRoutes(next.handlers);
      options.onSwitched?.(why);
    },
    failed: () => {
      countFailure?.();
      lastOk = 0;
    },
  });
  const onHangUp = () => void reloader.request("SIGHUP");
  if (options.signals !== false) Deno.addSignalListener("SIGHUP", onHangUp);
  watcher?.watch(watchedFiles(current.config));
  return {
    reload: (why) => reloader.request(why),
    stop: () => {
      reloader.stop();
      watcher?.close();
      if (options.signals !== false) Deno.removeSignalListener("SIGHUP", onHangUp);
    },
  };
}
