/**
 * The `serve` command: load the configuration, compile every module, print the route table,
 * then serve until a stop signal.
 * @module
 */

import { componentParts } from "../run/module_component.ts";
import { loadComponentLazily, withComponents } from "./components.ts";
import { ConfigError, type ModuleEntry } from "../config/modules_toml.ts";
import { whyNoSandbox } from "../wasi/linux_fs.ts";
import { exists } from "../paths.ts";
import { WorkerPool } from "../pool/pool.ts";
import { InlineFirstExecutor } from "../inline/executor.ts";
import { InlineVariants } from "../inline/variants.ts";
import { ModuleCache } from "../run/module_cache.ts";
import { CompileCache } from "../run/compile_cache.ts";
import type { Executor } from "../run/contract.ts";
import { openFileLimit } from "../open_files.ts";
import { startTrace } from "./start_trace.ts";
import { warmUpServing } from "./warm_up.ts";
import { OciSources } from "./oci_sources.ts";
import { startReloading } from "./reloading.ts";
import { RoutingTable } from "../routing/table.ts";
import { createApp, metricsHandler, type PeerMetrics } from "../server/app.ts";
import type { RouteHandler } from "../server/handlers.ts";
import {
  type ConfigurationSource,
  loadConfiguration,
  type LoadedConfiguration,
} from "../server/configuration.ts";
import { listen, type RunningServer } from "../server/lifecycle.ts";
import { Metrics } from "../server/metrics.ts";
import { AccessLog } from "../server/access_log.ts";
import type { Logger } from "../server/logger.ts";
import { ModuleLog } from "../server/module_log.ts";
import { Spooler, spoolLimitsFor } from "../server/spool.ts";
import type { ServeOptions } from "./serve_options.ts";
import {
  canSharePort,
  type MainIsolateLink,
  ServerIsolates,
  shareOf,
  warmUpServerIsolate,
} from "./server_isolates.ts";

/** Knative's names for this pod's service, revision and configuration, when it runs there. */
export function knativeNames(env: (name: string) => string | undefined = (n) => Deno.env.get(n)) {
  const names = [
    ["service", env("K_SERVICE")],
    ["revision", env("K_REVISION")],
    ["configuration", env("K_CONFIGURATION")],
  ].filter(([, value]) => value);
  return names.length === 0 ? "" : ` (Knative ${names.map(([k, v]) => `${k} ${v}`).join(", ")})`;
}

/** The route table as printed at start. */
export function formatRoutes(handlers: readonly RouteHandler[]): string {
  const rows = [["/healthz", "(built-in health check)"]];
  for (const h of handlers) {
    const how = h.component ? `${h.component} component` : h.entrypoint;
    rows.push([h.pattern.text, `${h.entry.module} (${how})`]);
  }
  const width = Math.max(...rows.map(([route]) => route.length));
  return ["Routes:", ...rows.map(([route, what]) => `  ${route.padEnd(width)}  ${what}`)].join(
    "\n",
  );
}

/**
 * The route whose writable volume holds `dir` (or a directory above it), said for the log;
 * undefined when no module can write there. Paths are compared as the kernel resolves them.
 */
export function writableVolumeOver(
  entries: readonly ModuleEntry[],
  dir: string,
): string | undefined {
  const real = (path: string) => {
    try {
      return Deno.realPathSync(path);
    } catch {
      return path;
    }
  };
  // The cache may not exist yet: resolve its nearest existing ancestor.
  let target = dir;
  let missing = "";
  while (!exists(target) && target !== "/") {
    missing = `/${target.slice(target.lastIndexOf("/") + 1)}${missing}`;
    target = target.slice(0, target.lastIndexOf("/")) || "/";
  }
  const resolved = `${real(target)}${missing}/`.replace(/\/+/g, "/");
  for (const entry of entries) {
    for (const volume of entry.volumes) {
      if (volume.readOnly) continue;
      const host = `${real(volume.hostPath)}/`.replace(/\/+/g, "/");
      if (resolved.startsWith(host)) {
        return `route '${entry.route}' (volume '${volume.guestPath}' = '${volume.hostPath}')`;
      }
    }
  }
  return undefined;
}

/** Serves `/metrics` alone on its own address (`--metrics IP:PORT`). */
function serveMetrics(
  metrics: Metrics,
  address: { hostname: string; port: number },
  logger: Logger,
  peers?: PeerMetrics,
): Deno.HttpServer {
  return Deno.serve({
    ...address,
    onListen: ({ port }) => logger.info(`metrics on http://${address.hostname}:${port}/metrics`),
  }, metricsHandler(metrics, peers));
}

/** A problem that stops the server from starting: unreadable TLS files, a busy port. */
export class StartupError extends Error {
  override name = "StartupError";
}

async function readPem(flag: string, file: string): Promise<string> {
  try {
    return await Deno.readTextFile(file);
  } catch (error) {
    throw new StartupError(`${flag} '${file}': ${(error as Error).message}`);
  }
}

/**
 * Runs the server with `options` until it is stopped. Throws on a startup error. With `link`,
 * this is a server isolate the main one started (`--servers`): it shares the main one's port,
 * stops and reloads when it does, and leaves start-up reports to it.
 */
export async function serve(
  options: ServeOptions,
  logger: Logger,
  link?: MainIsolateLink,
): Promise<void> {
  const main = link === undefined;
  // Several isolates only where the port can be shared; the default is quietly one elsewhere.
  let servers = options.servers ?? (navigator.hardwareConcurrency || 1);
  if (main && servers > 1 && (options.loadOnly || !canSharePort())) {
    if (options.servers !== undefined && !options.loadOnly) {
      logger.warn(
        `--servers ${servers}: this process cannot share its port (SO_REUSEPORT needs Linux ` +
          "and Deno's --unstable-net); serving from one isolate",
      );
    }
    servers = 1;
  }
  // What only concerns this isolate (its reloads, its listener), said by the main one alone
  // unless it went wrong here.
  const ownLogger: Logger = link
    ? {
      info: () => {},
      warn: (message) => logger.warn(`server isolate ${link.index}: ${message}`),
      error: (message) => logger.error(`server isolate ${link.index}: ${message}`),
    }
    : logger;
  const openFiles = main ? openFileLimit() : undefined;
  if (openFiles !== undefined && openFiles < 4096) {
    logger.warn(
      `this process may open ${openFiles} descriptors at most: connections, volumes and ` +
        "the pool share them (raise the hard limit, e.g. ulimit -Hn)",
    );
  }
  // What loading derives from a module is kept across starts: a restart only reads it back.
  // Its entries run as they are, so no module may be able to write them.
  // At start an unsafe module cache is given up; once serving, a reload that would make it
  // unsafe is refused. Until then, files are read on this thread (nothing else waits for it).
  let serving = false;
  const derived = new CompileCache(
    options.moduleCache,
    (message) => logger.warn(message),
    () => !serving,
  );
  // Each module is prepared to run on the server's thread as soon as it is loaded; a request
  // that arrives before its module is prepared waits for it.
  const variants = new InlineVariants(derived);
  // Every module is compiled preemptible: a guest is stopped at its deadline by itself.
  const cache = new ModuleCache({
    preemptible: true,
    onCompiled: (compiled) => {
      if (!options.poolOnly) variants.add(compiled);
    },
    compileCache: derived,
    loadComponent: loadComponentLazily,
  });
  const pool = new WorkerPool({
    warm: shareOf(options.workers, servers),
    // Most requests run on the server's thread: the pool starts when one first needs it. A
    // second server isolate starts its own at once, off the first request's path: its
    // workers (started from a worker) take about a second to load.
    lazy: main && !options.poolOnly,
    max: shareOf(options.maxConcurrency, servers),
    onWorkerLost: (message) => logger.warn(message),
  });
  // Said once per route: why its runs moved from the server's thread to the pool.
  const movedRoutes = new Set<string | undefined>();
  let countMove = () => {};
  const executor: Executor = options.poolOnly
    ? pool
    : new InlineFirstExecutor(pool, withComponents(variants), (route, why) => {
      countMove();
      if (movedRoutes.has(route)) return;
      movedRoutes.add(route);
      logger.info(
        `${route ?? "a run"}: moved from the server's thread to the worker pool (${why}); ` +
          "its next runs start in the pool for a while",
      );
    });
  const source: ConfigurationSource = {
    configFile: options.configFile,
    startDir: options.startDir,
    limits: options.limits,
    cache,
    executor,
    check: (config) => {
      // The main isolate says them, once.
      if (main) { for (const warning of config.warnings) logger.warn(warning); }
      if (!serving) startTrace.mark("configuration");
      const withVolumes = config.entries.find((entry) => entry.volumes.length > 0);
      const noSandbox = withVolumes && whyNoSandbox();
      if (withVolumes && noSandbox) {
        throw new ConfigError(
          `${config.file}:${withVolumes.line}: [[module]] #${withVolumes.index} (route ` +
            `'${withVolumes.route}') has volumes, which are refused rather than served ` +
            `unsafely: ${noSandbox}`,
        );
      }
      const exposedBy = derived.dir && writableVolumeOver(config.entries, derived.dir);
      if (exposedBy && serving) {
        // Its entries are read back as they are: no module may be able to write them.
        throw new ConfigError(
          `${config.file}: ${exposedBy} could write into the module cache ${derived.dir}, ` +
            "which this server reads modules from (choose another --module-cache and restart)",
        );
      }
      if (exposedBy) {
        if (main) {
          logger.warn(
            `module cache ${derived.dir} is not used: ${exposedBy} could write into it ` +
              "(choose another --module-cache)",
          );
        }
        derived.forgetDir();
      }
    },
  };
  // Pulled into the module cache in use (a temp dir when there is none).
  const ociSources = new OciSources({
    dir: () => derived.dir,
    // The main isolate pulled them into the module cache before it started the others.
    offline: options.offline || !main,
    insecure: options.insecureRegistries,
    env: (name) => Deno.env.get(name),
    logger,
  });
  source.fetchRemote = (config) => ociSources.fetch(config);
  let loaded: LoadedConfiguration;
  try {
    loaded = await loadConfiguration(source);
  } catch (error) {
    executor.close();
    await ociSources.close();
    throw error;
  }
  const handlers = loaded.handlers;
  startTrace.mark("modules");

  const settled = variants.settled().then(() => {
    if (!main) return;
    // Named as configured when pulled (not by the file it was pulled to).
    const modules = new Map(
      handlers.map((h) => [h.entry.oci ? h.entry.module : h.entry.modulePath, h.module]),
    );
    const poolOnly = [...modules].flatMap(([path, module]) => {
      const why = componentParts(module) ? "a component" : variants.whyNot(module);
      return why === undefined ? [] : [`${path} (${why})`];
    });
    logger.info(
      options.poolOnly
        ? `every request runs in the worker pool (--pool-only): ${modules.size} modules`
        : `modules ready to run on the server's thread: ${modules.size - poolOnly.length} of ` +
          `${modules.size}` +
          (poolOnly.length ? `; in the pool only: ${poolOnly.join(", ")}` : ""),
    );
    const { hits, made } = derived.counts;
    logger.info(
      `module cache ${options.moduleCache ?? "(none)"}: ${hits} derived modules read back, ` +
        `${made} made (text compiled, modules rewritten)`,
    );
  });

  if (options.loadOnly) {
    // Everything derived is in the module cache now: what an image build wants. The runtime
    // then compiles its serving code once, so that a DENO_DIR kept with the image has it.
    await settled;
    console.log(formatRoutes(handlers));
    executor.close();
    await ociSources.close();
    // Only worth having: a build that may not listen on loopback still gets its module cache.
    await Promise.all([warmUpServing(), warmUpServerIsolate()]).catch((error) =>
      logger.warn(
        `not warmed up (Deno compiles its serving code at the first start instead): ${
          (error as Error).message
        }`,
      )
    );
    return;
  }

  const logDir = options.logDir ?? await Deno.makeTempDir({ prefix: "wagi-logs-" });
  await Deno.mkdir(logDir, { recursive: true });
  if (options.logDir === undefined) logger.info(`module stderr goes to ${logDir}`);
  // The isolates this one starts once it listens (`--servers`).
  let isolates: ServerIsolates | undefined;
  let isolatesStopped: Promise<void> | undefined;
  const peerMetrics = link?.peerMetrics ??
    (servers > 1 ? () => isolates?.snapshots() ?? Promise.resolve([]) : undefined);

  const spooler = new Spooler(spoolLimitsFor(options.caps.maxBodyBytes));
  let server: RunningServer | undefined;
  const metrics = options.metrics === "off" ? undefined : new Metrics(
    handlers.map((h) => [h, h.matchedRoute] as const),
  );
  if (metrics) {
    metrics.isolate = link?.index ?? 0;
    if (link) link.snapshot = () => metrics.snapshot();
    countMove = metrics.counter(
      "wagi_moves_to_pool_total",
      "Runs that left the server's thread for the worker pool, and were redone there.",
    );
    metrics.gauge(
      {
        name: "wagi_requests_in_flight",
        help: "Requests being answered now, responses still being sent included.",
        value: () => server?.inFlight ?? 0,
      },
      {
        name: "wagi_pool_workers",
        help: "Worker threads of the pool, busy or idle.",
        value: () => pool.workers,
      },
      {
        name: "wagi_pool_queued",
        help: "Runs waiting in the pool: for their route's share of it, or for a worker.",
        value: () => pool.queued,
      },
      {
        name: "wagi_module_cache_read_total",
        help: "Derived modules read back from --module-cache since start.",
        value: () => derived.counts.hits,
      },
      {
        name: "wagi_module_cache_made_total",
        help: "Derived modules made (text compiled, modules rewritten) since start.",
        value: () => derived.counts.made,
      },
      {
        name: "process_resident_memory_bytes",
        help: "Resident memory of the server's process.",
        value: () => Deno.memoryUsage().rss,
        // Every isolate reads the same process.
        merge: "max",
      },
    );
  }
  let accessLogFile: Deno.FsFile | undefined;
  if (options.accessLog?.file) {
    try {
      accessLogFile = await Deno.open(options.accessLog.file, {
        append: true,
        create: true,
      });
    } catch (error) {
      executor.close();
      await ociSources.close();
      throw new StartupError(
        `--access-log-file '${options.accessLog.file}': ${(error as Error).message}`,
      );
    }
  }
  const accessLog = options.accessLog &&
    new AccessLog(options.accessLog.format, accessLogFile ?? Deno.stdout, undefined, servers > 1);
  const table = new RoutingTable(handlers);
  const shadowed = options.metrics === "on" && table.lookup("/metrics");
  if (shadowed) {
    logger.warn(
      `route '${shadowed.handler.matchedRoute}' matches /metrics, where the server's metrics are ` +
        "answered (GET and HEAD) instead: move them with --metrics IP:PORT or turn them off",
    );
  }
  const app = createApp({
    spooler,
    table,
    executor,
    // Several isolates append to a route's log: its size is read before each append.
    moduleLog: new ModuleLog(logDir, options.logMaxBytes, servers > 1),
    logger,
    hostname: options.hostname,
    globalEnv: options.env,
    scheme: options.tls ? "https" : "http",
    caps: options.caps,
    maxOpenFiles: options.maxOpenFiles,
    metrics,
    // On the main port unless it has its own listener.
    serveMetrics: options.metrics === "on",
    peerMetrics,
    accessLog,
    exposeRoutes: options.exposeRoutes,
  });

  const tls = options.tls && {
    cert: await readPem("--tls-cert", options.tls.certFile),
    key: await readPem("--tls-key", options.tls.keyFile),
  };
  startTrace.mark("app");
  if (main) console.log(formatRoutes(handlers));
  let metricsServer: Deno.HttpServer | undefined;
  if (main && metrics && typeof options.metrics === "object") {
    const { hostname, port } = options.metrics;
    try {
      metricsServer = serveMetrics(metrics, options.metrics, logger, peerMetrics);
    } catch (error) {
      executor.close();
      await ociSources.close();
      throw new StartupError(
        `--metrics: cannot listen on ${hostname}:${port}: ${(error as Error).message}`,
      );
    }
  }
  // Watching starts before Ready is said: a change made once the server is ready is seen.
  serving = true;
  const reloading = startReloading({
    source,
    loaded,
    table,
    cache,
    variants,
    executor,
    metrics,
    // The main isolate watches, and tells the others once it switched.
    watch: main && options.watch,
    signals: main,
    onSwitched: (why) => isolates?.reload(why),
    logger: ownLogger,
    printRoutes: (handlers) => {
      if (main) console.log(formatRoutes(handlers));
    },
  });
  link?.onReload((why) => void reloading.reload(why));
  try {
    server = listen(app, {
      hostname: options.listen.hostname,
      port: options.listen.port,
      tls,
      logger: ownLogger,
      reusePort: servers > 1,
      firstOfPort: main,
      signals: main,
      onStop: () => {
        isolatesStopped = isolates?.stop(options.drainTimeoutMs);
      },
      onReady: (url, port) => {
        if (link) return link.post({ type: "ready" });
        startTrace.mark("listen");
        console.log(`Ready: serving on ${url}${knativeNames()}`);
        if (Deno.env.get("WAGI_START_TRACE")) logger.info(startTrace.summary());
        if (servers === 1) return;
        // Started a moment after this one serves: a first request does not wait for them.
        isolates = new ServerIsolates(
          servers - 1,
          { ...options, servers, logDir },
          port,
          logger,
          () => metrics?.snapshot(),
          (listening) => logger.info(`serving from ${listening + 1} of ${servers} server isolates`),
        );
      },
      drainTimeoutMs: options.drainTimeoutMs,
      onDrainTimeout: () => executor.close(),
    });
    link?.onStop(() => server!.stop());
  } catch (error) {
    reloading.stop();
    executor.close();
    await ociSources.close();
    await metricsServer?.shutdown();
    const { hostname, port } = options.listen;
    throw new StartupError(`cannot listen on ${hostname}:${port}: ${(error as Error).message}`);
  }
  await server.finished;
  await isolatesStopped;
  reloading.stop();
  await metricsServer?.shutdown();
  await accessLog?.flush();
  accessLogFile?.close();
  executor.close();
  // Responses cut off by the drain deadline may have left their spool files.
  await spooler.close();
  await ociSources.close();
  if (options.logDir === undefined) {
    // The temp dir chosen at start goes with the server, unless a module wrote to it.
    await Deno.remove(logDir).then(
      () => {},
      () => logger.info(`module stderr logs are kept in ${logDir}`),
    );
  }
}
