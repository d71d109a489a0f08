/**
 * Loading WAGI's `modules.toml`: parse, check every key, resolve module and volume paths.
 * Errors name the file, the `[[module]]` (index and route) and the line.
 * @module
 */

import { parse, TomlError } from "smol-toml";
import { dirname, exists, fromFileUrl, isAbsolute, join } from "../paths.ts";
import { parseVolume, type Volume } from "./volumes.ts";
import { isOciSource, type OciReference, parseOciReference } from "../oci/reference.ts";
import {
  MEMORY_LIMIT_RANGE,
  parseMemoryLimit,
  parseSeconds,
  parseSize,
  SECONDS_RANGE,
} from "./limits.ts";

/** One `[[module]]` entry, checked and with its paths resolved. */
export interface ModuleEntry {
  /** 1-based position among the `[[module]]` tables. */
  index: number;
  /** Line of its `[[module]]` header in the file. */
  line: number;
  route: string;
  /** The `module` value as written. */
  module: string;
  /** The module's file on the host (for an `oci:` module: once pulled; "" before). */
  modulePath: string;
  /** The reference of an `oci:` module, pulled before its module loads. */
  oci?: OciReference;
  entrypoint: string;
  /** Whether `entrypoint` was written (a component has none to name). */
  entrypointGiven?: boolean;
  /** `kind`: the world the module must be a component of; undefined → any module. */
  kind?: "http" | "command";
  /** Host directories preopened for the module, at their guest paths. */
  volumes: Volume[];
  environment: Record<string, string>;
  allowedHosts?: string[];
  httpMaxConcurrency?: number;
  argv?: string;
  /** `timeout` (seconds) in milliseconds; undefined → the server default. */
  timeoutMs?: number;
  /** `memory_limit` in bytes; undefined → the server default. */
  memoryLimitBytes?: number;
  /** `http_timeout` (seconds) in milliseconds: how long an outbound request may take. */
  httpTimeoutMs?: number;
  /** `http_max_response` in bytes: the largest outbound response body a module may read. */
  httpMaxResponseBytes?: number;
}

/** A loaded configuration. */
export interface ModulesConfig {
  file: string;
  entries: ModuleEntry[];
  /** Things worth telling the operator that do not stop the server (unknown keys). */
  warnings: string[];
}

/** A configuration problem; the message names the file, the entry and the line. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const KNOWN_KEYS = new Set([
  "route",
  "module",
  "entrypoint",
  "kind",
  "volumes",
  "environment",
  "allowed_hosts",
  "http_max_concurrency",
  "argv",
  "timeout",
  "memory_limit",
  "http_timeout",
  "http_max_response",
]);

/** Lines of each `[[module]]` header, in order, so that entries can be reported by line. */
function moduleHeaderLines(text: string): number[] {
  const lines: number[] = [];
  text.split("\n").forEach((line, i) => {
    if (/^\s*\[\[\s*module\s*\]\]/.test(line)) lines.push(i + 1);
  });
  return lines;
}

/**
 * Finds a path the way WAGI users expect: relative to the directory the command was started
 * from, else (ours) relative to the config file's directory; absolute paths and `file:` URLs
 * as they are. Returns the candidates tried when none exists.
 */
export function resolveUserPath(
  value: string,
  startDir: string,
  configDir: string,
): { path: string } | { tried: string[] } {
  if (value.startsWith("file:")) {
    const path = fromFileUrl(value);
    return exists(path) ? { path } : { tried: [path] };
  }
  if (isAbsolute(value)) return exists(value) ? { path: value } : { tried: [value] };
  const tried = [join(startDir, value), join(configDir, value)];
  const found = tried.find((candidate) => exists(candidate));
  return found ? { path: found } : { tried: [...new Set(tried)] };
}

/** Parses and checks the text of a `modules.toml`; `file` and `startDir` resolve paths. */
export function parseModulesToml(text: string, file: string, startDir: string): ModulesConfig {
  let data: Record<string, unknown>;
  try {
    data = parse(text) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof TomlError) {
      throw new ConfigError(
        `${file}:${error.line}:${error.column}: invalid TOML: ${error.message.split("\n")[0]}`,
      );
    }
    throw new ConfigError(`${file}: invalid TOML: ${(error as Error).message}`);
  }
  const warnings: string[] = [];
  for (const key of Object.keys(data)) {
    if (key !== "module") warnings.push(`${file}: unknown top-level key '${key}' ignored`);
  }
  const modules = data.module ?? [];
  if (!Array.isArray(modules)) {
    throw new ConfigError(`${file}: 'module' must be an array of tables ([[module]])`);
  }
  if (modules.length === 0) throw new ConfigError(`${file}: no [[module]] entries`);
  const headerLines = moduleHeaderLines(text);
  const configDir = dirname(file);
  const entries = modules.map((raw, i) =>
    checkEntry(raw, i + 1, headerLines[i] ?? 0, file, startDir, configDir, warnings)
  );
  // The first entry of a route wins: a later one with the same route can never be reached.
  const firstOf = new Map<string, ModuleEntry>();
  for (const entry of entries) {
    const first = firstOf.get(entry.route);
    if (!first) firstOf.set(entry.route, entry);
    else {
      warnings.push(
        `${file}:${entry.line}: [[module]] #${entry.index} has the same route '${entry.route}' ` +
          `as #${first.index} (line ${first.line}): it is never reached`,
      );
    }
  }
  return { file, entries, warnings };
}

function checkEntry(
  raw: unknown,
  index: number,
  line: number,
  file: string,
  startDir: string,
  configDir: string,
  warnings: string[],
): ModuleEntry {
  const table = raw as Record<string, unknown>;
  const routeText = typeof table?.route === "string" ? ` (route '${table.route}')` : "";
  const where = `${file}:${line}: [[module]] #${index}${routeText}`;
  const fail = (message: string): never => {
    throw new ConfigError(`${where}: ${message}`);
  };
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) fail("must be a table");

  for (const key of Object.keys(table)) {
    if (!KNOWN_KEYS.has(key)) warnings.push(`${where}: unknown key '${key}' ignored`);
  }
  const string = (key: string, required: boolean): string | undefined => {
    const value = table[key];
    if (value === undefined) return required ? fail(`missing required key '${key}'`) : undefined;
    if (typeof value !== "string") return fail(`'${key}' must be a string`);
    return value;
  };
  const stringTable = (key: string): Record<string, string> => {
    const value = table[key] ?? {};
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return fail(`'${key}' must be a table of strings`);
    }
    for (const [k, v] of Object.entries(value)) {
      if (typeof v !== "string") fail(`'${key}.${k}' must be a string`);
    }
    return { ...value } as Record<string, string>;
  };

  const route = string("route", true)!;
  if (!route.startsWith("/")) fail(`route '${route}' must start with '/'`);
  const module = string("module", true)!;
  const entrypointGiven = string("entrypoint", false);
  const entrypoint = entrypointGiven ?? "_start";
  const kind = string("kind", false);
  if (kind !== undefined && kind !== "http" && kind !== "command") {
    fail(`'kind' must be "http" or "command" (the world of a WASI 0.2 component), not '${kind}'`);
  }
  const argv = string("argv", false);
  const environment = stringTable("environment");

  if (module.startsWith("bindle:")) fail(`module '${module}': bindle is not supported`);
  let oci: OciReference | undefined;
  let modulePath = "";
  if (isOciSource(module)) {
    try {
      oci = parseOciReference(module);
    } catch (error) {
      fail(`module '${module}': ${(error as Error).message}`);
    }
  } else {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(module) && !module.startsWith("file:")) {
      fail(`module '${module}': only file paths, file: URLs and oci: references are supported`);
    }
    const found = resolveUserPath(module, startDir, configDir);
    if ("tried" in found) {
      fail(`module file '${module}' not found (tried ${found.tried.join(", ")})`);
    }
    modulePath = (found as { path: string }).path;
  }

  const volumes: Volume[] = [];
  for (const [guest, value] of Object.entries(stringTable("volumes"))) {
    const { path: host, readOnly } = parseVolume(value);
    const dir = resolveUserPath(host, startDir, configDir);
    if ("tried" in dir) fail(`volume '${guest}': directory '${host}' not found`);
    const hostPath = (dir as { path: string }).path;
    if (!Deno.statSync(hostPath).isDirectory) {
      fail(`volume '${guest}': '${host}' is not a directory`);
    }
    volumes.push({ guestPath: guest, hostPath, readOnly });
  }

  let allowedHosts: string[] | undefined;
  if (table.allowed_hosts !== undefined) {
    const hosts = table.allowed_hosts;
    if (!Array.isArray(hosts) || hosts.some((h) => typeof h !== "string")) {
      fail("'allowed_hosts' must be an array of strings");
    }
    allowedHosts = hosts as string[];
  }
  let httpMaxConcurrency: number | undefined;
  if (table.http_max_concurrency !== undefined) {
    const value = table.http_max_concurrency;
    if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
      fail("'http_max_concurrency' must be a non-negative integer");
    }
    httpMaxConcurrency = value as number;
  }
  const size = (
    key: string,
    parse = parseSize,
    what = `a size such as "128MiB" or a number of bytes`,
  ): number | undefined => {
    const value = table[key];
    if (value === undefined) return undefined;
    const bytes = typeof value === "string" || typeof value === "number" ? parse(value) : undefined;
    if (bytes === undefined) fail(`'${key}' must be ${what}`);
    return bytes;
  };
  const seconds = (key: string): number | undefined => {
    const value = table[key];
    if (value === undefined) return undefined;
    const ms = typeof value === "number" ? parseSeconds(value) : undefined;
    if (ms === undefined) fail(`'${key}' must be ${SECONDS_RANGE}`);
    return ms;
  };
  const memoryLimitBytes = size("memory_limit", parseMemoryLimit, MEMORY_LIMIT_RANGE);
  const httpMaxResponseBytes = size("http_max_response");
  const httpTimeoutMs = seconds("http_timeout");
  const timeoutMs = seconds("timeout");
  return {
    timeoutMs,
    memoryLimitBytes,
    httpTimeoutMs,
    httpMaxResponseBytes,
    index,
    line,
    route,
    module,
    modulePath,
    oci,
    entrypoint,
    entrypointGiven: entrypointGiven !== undefined,
    kind: kind as ModuleEntry["kind"],
    volumes,
    environment,
    allowedHosts,
    httpMaxConcurrency,
    argv,
  };
}

/** Reads and checks a `modules.toml` file. */
export async function loadModulesToml(file: string, startDir: string): Promise<ModulesConfig> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    throw new ConfigError(`cannot read config file '${file}': ${(error as Error).message}`);
  }
  return parseModulesToml(text, file, startDir);
}
