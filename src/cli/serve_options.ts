/**
 * The `serve` command line, WAGI's flags (docs/wagi.md, "Command line"), turned into checked options.
 * @module
 */

import { isAbsolute, join } from "../paths.ts";
import { type HostPort, parseHostPort } from "../cgi/request.ts";
import { parseEnvAssignment, parseEnvFile } from "./env_file.ts";
import { DEFAULT_LOG_MAX_BYTES } from "../server/module_log.ts";
import {
  type BodyCaps,
  DEFAULT_CAPS,
  DEFAULT_LIMITS,
  type Limits,
  MEMORY_LIMIT_RANGE,
  parseMemoryLimit,
  parseSeconds,
  parseSize,
  SECONDS_RANGE,
} from "../config/limits.ts";

/** A command-line mistake; the message says which flag and why. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** What `serve` runs with. */
export interface ServeOptions {
  /** Absolute path of the `modules.toml`. */
  configFile: string;
  /** The directory relative paths resolve against (`INIT_CWD` under `deno task`). */
  startDir: string;
  listen: { hostname: string; port: number };
  /** `--hostname`, the default `SERVER_NAME`/`SERVER_PORT`. */
  hostname: HostPort;
  /** Where module stderr goes; undefined → a temp dir chosen at start. */
  logDir?: string;
  /**
   * Where derived modules (WebAssembly text compiled, rewritten variants) are kept across
   * starts (`--module-cache`); undefined → nowhere.
   */
  moduleCache?: string;
  /** Size at which a route's stderr log is rotated (`--log-max-size`). */
  logMaxBytes: number;
  /** Most descriptors one run may have open (`--max-open-files`). */
  maxOpenFiles: number;
  tls?: { certFile: string; keyFile: string };
  /** `--env-file` variables then `-e` ones, in order. */
  env: [string, string][];
  /** Default per-module limits (`--timeout`, `--memory-limit`). */
  limits: Limits;
  /** `--max-body`, `--max-response`. */
  caps: BodyCaps;
  /**
   * Server isolates sharing the port (`--servers`); undefined: as many as the CPUs the
   * process may use, where the port can be shared.
   */
  servers?: number;
  /** Warm pool workers (`--workers`, default: the number of CPUs), shared out among isolates. */
  workers: number;
  /** Most guests running in the pool at once (`--max-concurrency`). */
  maxConcurrency: number;
  /** `/metrics`: on the main port, off, or on an address of its own (`--metrics`). */
  metrics: "on" | "off" | { hostname: string; port: number };
  /** A line per request, and where (`--access-log`, `--access-log-file`; stdout if no file). */
  accessLog?: { format: "common" | "json"; file?: string };
  /** `/_wagi/routes` lists the routing table (`--expose-routes`). */
  exposeRoutes: boolean;
  /** Every run goes to the worker pool (`--pool-only`). */
  poolOnly: boolean;
  /** Load and prepare every module, then exit (`--load-only`). */
  loadOnly: boolean;
  /** How long a stop waits for in-flight requests (`--drain-timeout`). */
  drainTimeoutMs: number;
  /** Reload when the configuration or a module file changes (`--watch`). */
  watch: boolean;
  /** `oci:` modules only from the module cache, never pulled (`--offline`). */
  offline: boolean;
  /** Registries spoken to in plain HTTP besides loopback ones (`--insecure-registry`). */
  insecureRegistries: string[];
}

/**
 * Default drain timeout: a bit below the 30 s grace period Kubernetes gives a pod between
 * SIGTERM and SIGKILL, so that stragglers are ended by us, cleanly, not killed.
 */
export const DEFAULT_DRAIN_TIMEOUT_MS = 25_000;

/** The help text of `serve`. */
export const SERVE_USAGE = `Usage: wagi-deno [serve] -c modules.toml [options]

  -c, --config FILE        the modules.toml to serve (required)
  -l, --listen IP:PORT     bind address (default 127.0.0.1:3000; 0.0.0.0:$PORT when PORT is set)
      --hostname HOST[:PORT]  default SERVER_NAME/SERVER_PORT (default localhost:3000)
      --log-dir DIR        where module stderr goes (env WAGI_LOG_DIR; default a temp dir)
      --log-max-size SIZE  a route's stderr log is rotated at this size, one old file kept
                           (default 16MiB)
      --tls-cert FILE      serve HTTPS with this certificate (env WAGI_TLS_CERT)
      --tls-key FILE       ... and this key (env WAGI_TLS_KEY)
  -e, --env K=V            environment for every module (repeatable)
      --env-file FILE      dotenv file of variables for every module (repeatable)
      --module-cache DIR   where pulled (oci:), compiled and rewritten modules are kept
                           across starts (default $XDG_CACHE_HOME/wagi-deno or
                           ~/.cache/wagi-deno)
      --watch              reload when the configuration or a module file changes (SIGHUP
                           always reloads)
      --offline            oci: modules from the module cache only, never pulled
      --insecure-registry HOST[:PORT]  pull from this registry in plain HTTP (repeatable;
                           loopback registries always are)
      --timeout SECONDS    default time a module may run before a 504 (default 30)
      --memory-limit SIZE  default largest module memory, e.g. 128MiB (default 128MiB)
      --max-body SIZE      request bodies above this get 413 (default 64MiB)
      --max-response SIZE  responses are cut off past this (default 1GiB)
      --servers N          server isolates sharing the port, each running modules on a
                           thread of its own (default: the number of CPUs; one where the
                           port cannot be shared: Linux with Deno's --unstable-net only)
      --workers N          pool workers kept ready for runs that leave the server's
                           thread (default: the number of CPUs; all isolates together)
      --max-concurrency N  most modules running in the pool at once, one route at most
                           half of them; more wait (default 8 x workers, at least 16;
                           all isolates together)
      --pool-only          run every request in the worker pool, never on the server's
                           thread (to compare the two, or to rule one out)
      --load-only          load and prepare every module (filling --module-cache), answer
                           one request on a loopback port (so that DENO_DIR keeps the
                           compiled serving code), then exit (for an image build)
      --drain-timeout SECONDS  on SIGTERM, how long in-flight requests may finish (default 25)
      --max-open-files N   most files and directories one run may have open, stdio included
                           (default 1024)
      --metrics WHERE      Prometheus metrics at /metrics: on (the main port, the default),
                           off, or IP:PORT (a listener of their own)
      --access-log FORMAT  a line per request: common (Common Log Format) or json
                           (default: none)
      --access-log-file FILE  where those lines go (appended; default stdout)
      --expose-routes      answer GET /_wagi/routes with the routing table as JSON
  -h, --help               this text
  -V, --version            the version
`;

/** Parses `--access-log` and `--access-log-file`. */
function parseAccessLog(
  format: string | undefined,
  file: string | undefined,
  resolve: (path: string) => string,
): ServeOptions["accessLog"] {
  if (format === undefined) {
    if (file !== undefined) throw new UsageError("--access-log-file needs --access-log FORMAT");
    return undefined;
  }
  if (format !== "common" && format !== "json") {
    throw new UsageError(`--access-log '${format}': expected common or json`);
  }
  return { format, file: file === undefined ? undefined : resolve(file) };
}

/** Parses `--metrics`: `on`, `off` or an address of its own. */
function parseMetrics(value: string): ServeOptions["metrics"] {
  if (value === "on" || value === "off") return value;
  try {
    return parseListen(value);
  } catch {
    throw new UsageError(`--metrics '${value}': expected on, off or IP:PORT, e.g. 0.0.0.0:9090`);
  }
}

/** Parses `IP:PORT`, `[v6]:PORT` or `HOST:PORT` into a bind address. */
export function parseListen(value: string): { hostname: string; port: number } {
  const { name, port } = parseHostPort(value);
  const number = Number(port);
  if (!name || port === undefined || !/^\d+$/.test(port) || number > 65535) {
    throw new UsageError(`--listen '${value}': expected IP:PORT, e.g. 127.0.0.1:3000`);
  }
  return { hostname: name.replace(/^\[(.*)\]$/, "$1"), port: number };
}

/** The user's cache directory for wagi-deno (XDG), or undefined when there is no home. */
function defaultModuleCache(getEnv: (name: string) => string | undefined): string | undefined {
  const xdg = getEnv("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/wagi-deno`;
  const home = getEnv("HOME");
  return home ? `${home}/.cache/wagi-deno` : undefined;
}

const FLAGS_WITH_VALUE = new Map<string, string>([
  ["-c", "config"],
  ["--config", "config"],
  ["-l", "listen"],
  ["--listen", "listen"],
  ["--hostname", "hostname"],
  ["--log-dir", "log-dir"],
  ["--log-max-size", "log-max-size"],
  ["--tls-cert", "tls-cert"],
  ["--tls-key", "tls-key"],
  ["-e", "env"],
  ["--env", "env"],
  ["--env-file", "env-file"],
  ["--module-cache", "module-cache"],
  ["--insecure-registry", "insecure-registry"],
  ["--default-config", "default-config"],
  ["--timeout", "timeout"],
  ["--memory-limit", "memory-limit"],
  ["--max-body", "max-body"],
  ["--max-response", "max-response"],
  ["--servers", "servers"],
  ["--workers", "workers"],
  ["--max-concurrency", "max-concurrency"],
  ["--drain-timeout", "drain-timeout"],
  ["--max-open-files", "max-open-files"],
  ["--metrics", "metrics"],
  ["--access-log", "access-log"],
  ["--access-log-file", "access-log-file"],
]);

/**
 * Parses `serve`'s arguments. `getEnv` reads the process environment; `startDir` is where
 * relative paths resolve; `cwd` is where `--default-config` (set by `deno task start`) resolves.
 */
export function parseServeArgs(
  args: readonly string[],
  getEnv: (name: string) => string | undefined,
  startDir: string,
  cwd: string,
): ServeOptions {
  const values = new Map<string, string[]>();
  let poolOnly = false;
  let loadOnly = false;
  let exposeRoutes = false;
  let offline = false;
  let watch = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (
      arg === "--pool-only" || arg === "--load-only" || arg === "--expose-routes" ||
      arg === "--offline" || arg === "--watch"
    ) {
      if (arg === "--pool-only") poolOnly = true;
      else if (arg === "--load-only") loadOnly = true;
      else if (arg === "--offline") offline = true;
      else if (arg === "--watch") watch = true;
      else exposeRoutes = true;
      continue;
    }
    if (arg === "-b" || arg.startsWith("--bindle")) {
      throw new UsageError(`${arg}: bindle is not supported (bindle is dead upstream)`);
    }
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const name = FLAGS_WITH_VALUE.get(flag);
    if (name === undefined) throw new UsageError(`unknown argument '${arg}'\n\n${SERVE_USAGE}`);
    let value: string;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      if (i + 1 >= args.length) throw new UsageError(`${flag} needs a value`);
      value = args[++i];
    }
    values.set(name, [...(values.get(name) ?? []), value]);
  }
  const last = (name: string) => values.get(name)?.at(-1);
  const resolve = (path: string, base = startDir) => isAbsolute(path) ? path : join(base, path);

  const config = last("config");
  const defaultConfig = last("default-config");
  if (config === undefined && defaultConfig === undefined) {
    throw new UsageError(`-c/--config is required\n\n${SERVE_USAGE}`);
  }
  const configFile = config !== undefined ? resolve(config) : resolve(defaultConfig!, cwd);
  try {
    if (!Deno.statSync(configFile).isFile) throw new Error("not a file");
  } catch {
    throw new UsageError(`config file '${configFile}' is not a file`);
  }

  const listenValue = last("listen");
  const port = getEnv("PORT");
  let listen = { hostname: "127.0.0.1", port: 3000 };
  if (listenValue !== undefined) listen = parseListen(listenValue);
  else if (port !== undefined && port !== "") listen = parseListen(`0.0.0.0:${port}`);

  const certFile = last("tls-cert") ?? getEnv("WAGI_TLS_CERT");
  const keyFile = last("tls-key") ?? getEnv("WAGI_TLS_KEY");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together: give both or neither");
  }

  const env: [string, string][] = [];
  for (const file of values.get("env-file") ?? []) {
    const path = resolve(file);
    let text: string;
    try {
      text = Deno.readTextFileSync(path);
    } catch (error) {
      throw new UsageError(`--env-file '${path}': ${(error as Error).message}`);
    }
    env.push(...parseEnvFile(text, path));
  }
  for (const assignment of values.get("env") ?? []) env.push(parseEnvAssignment(assignment));

  const logDir = last("log-dir") ?? getEnv("WAGI_LOG_DIR");
  const moduleCache = last("module-cache") ?? defaultModuleCache(getEnv);
  const option = <T>(
    name: string,
    parse: (v: string) => T | undefined,
    fallback: T,
    what: string,
  ) => {
    const value = last(name);
    if (value === undefined) return fallback;
    const parsed = parse(value);
    if (parsed === undefined) throw new UsageError(`--${name} '${value}': expected ${what}`);
    return parsed;
  };
  const count = (v: string) => (/^\d+$/.test(v) && Number(v) > 0 ? Number(v) : undefined);
  const size = "a size such as 64MiB or a number of bytes";
  const workers = option(
    "workers",
    count,
    navigator.hardwareConcurrency || 1,
    "a positive integer",
  );
  return {
    limits: {
      timeoutMs: option("timeout", parseSeconds, DEFAULT_LIMITS.timeoutMs, SECONDS_RANGE),
      memoryLimitBytes: option(
        "memory-limit",
        parseMemoryLimit,
        DEFAULT_LIMITS.memoryLimitBytes,
        MEMORY_LIMIT_RANGE,
      ),
    },
    caps: {
      maxBodyBytes: option("max-body", parseSize, DEFAULT_CAPS.maxBodyBytes, size),
      maxResponseBytes: option("max-response", parseSize, DEFAULT_CAPS.maxResponseBytes, size),
    },
    servers: last("servers") === undefined
      ? undefined
      : option("servers", count, 1, "a positive integer"),
    workers,
    offline,
    watch,
    insecureRegistries: (values.get("insecure-registry") ?? []).map((registry) => {
      if (!/^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9a-fA-F:]+\](:[0-9]{1,5})?$/.test(registry)) {
        throw new UsageError(`--insecure-registry '${registry}': expected HOST or HOST:PORT`);
      }
      return registry;
    }),
    poolOnly,
    loadOnly,
    exposeRoutes,
    metrics: parseMetrics(last("metrics") ?? "on"),
    accessLog: parseAccessLog(last("access-log"), last("access-log-file"), resolve),
    drainTimeoutMs: option(
      "drain-timeout",
      parseSeconds,
      DEFAULT_DRAIN_TIMEOUT_MS,
      SECONDS_RANGE,
    ),
    maxConcurrency: option(
      "max-concurrency",
      count,
      Math.max(16, 8 * workers),
      "a positive integer",
    ),
    configFile,
    startDir,
    listen,
    hostname: parseHostPort(last("hostname") ?? "localhost:3000"),
    logDir: logDir === undefined ? undefined : resolve(logDir),
    moduleCache: moduleCache === undefined ? undefined : resolve(moduleCache),
    logMaxBytes: option("log-max-size", parseSize, DEFAULT_LOG_MAX_BYTES, size),
    maxOpenFiles: option("max-open-files", count, 1024, "a positive integer"),
    tls: certFile && keyFile
      ? { certFile: resolve(certFile), keyFile: resolve(keyFile) }
      : undefined,
    env,
  };
}
