/**
 * Request → CGI: the environment variables and argv a WAGI module sees (spec sections 4, 5).
 * @module
 */

/** The raw parts of a request target, before any decoding. */
export interface RawTarget {
  /** The raw path, still percent-encoded. */
  path: string;
  /** The raw query without `?`; undefined when the URL has no `?` at all. */
  query: string | undefined;
}

/** Splits an absolute request URL into its raw path and query, without decoding either. */
export function rawTarget(url: string): RawTarget {
  const afterScheme = url.indexOf("://");
  const pathStart = url.indexOf("/", afterScheme === -1 ? 0 : afterScheme + 3);
  let target = pathStart === -1 ? "/" : url.slice(pathStart);
  const hash = target.indexOf("#");
  if (hash !== -1) target = target.slice(0, hash);
  const q = target.indexOf("?");
  return q === -1
    ? { path: target, query: undefined }
    : { path: target.slice(0, q), query: target.slice(q + 1) };
}

/** A host and port, either possibly missing. */
export interface HostPort {
  name?: string;
  port?: string;
}

/** Parses `host`, `host:port`, `[v6]` or `[v6]:port`; IPv6 literals keep their brackets. */
export function parseHostPort(value: string | null | undefined): HostPort {
  if (!value) return {};
  if (value.startsWith("[")) {
    const end = value.indexOf("]");
    if (end === -1) return { name: value };
    const rest = value.slice(end + 1);
    return {
      name: value.slice(0, end + 1),
      port: rest.startsWith(":") && rest.length > 1 ? rest.slice(1) : undefined,
    };
  }
  const colon = value.indexOf(":");
  if (colon === -1 || value.indexOf(":", colon + 1) !== -1) return { name: value };
  const name = value.slice(0, colon);
  const port = value.slice(colon + 1);
  return { name: name || undefined, port: port || undefined };
}

/**
 * Percent-decodes a raw path as bytes, then UTF-8 (lossy); `+` stays `+` and an invalid
 * escape stays as written.
 */
export function percentDecode(raw: string): string {
  if (!raw.includes("%")) return raw;
  const bytes: number[] = [];
  const encoder = new TextEncoder();
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === "%" && /^[0-9a-fA-F]{2}$/.test(raw.slice(i + 1, i + 3))) {
      bytes.push(parseInt(raw.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...encoder.encode(c));
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** What the CGI translation needs to know about one request. */
export interface CgiRequest {
  method: string;
  target: RawTarget;
  headers: Headers;
  /** Client IP without port. */
  remoteAddr: string;
  /** `CONTENT_LENGTH`: the body's length, or "" when a streamed body's length is unknown. */
  bodyLength: number | "";
  /** `https` when the server runs TLS. */
  scheme: "http" | "https";
  /** The request's authority: its `Host` header (HTTP/1.1) or `:authority` (HTTP/2). */
  authority?: string | null;
  /** `SERVER_PROTOCOL`; `HTTP/1.1` unless told otherwise. */
  protocol?: string;
}

/**
 * The authority and protocol of a request as `Deno.serve` hands it over. HTTP/2 (only over
 * TLS here) has no `Host` header: its `:authority` is the URL's host, and HTTP/1.1 must send
 * `Host`, so a TLS request without one is HTTP/2.
 */
export function authorityOf(
  request: Request,
  scheme: "http" | "https",
): { authority: string | null; protocol: string } {
  const host = request.headers.get("host");
  if (host !== null || scheme === "http") return { authority: host, protocol: "HTTP/1.1" };
  return { authority: new URL(request.url).host, protocol: "HTTP/2" };
}

/** What the CGI translation needs to know about the matched route. */
export interface CgiRoute {
  scriptName: string;
  rawPathInfo: string;
  matchedRoute: string;
}

/** Where variables not from the request come from. */
export interface CgiDefaults {
  /** `--hostname`, parsed: the fallback for `SERVER_NAME`/`SERVER_PORT`. */
  hostname: HostPort;
  /** `--env-file` then `-e`, in that order (later wins). */
  globalEnv: readonly (readonly [string, string])[];
  /** The module's own `environment`. */
  moduleEnv: Readonly<Record<string, string>>;
}

/**
 * Headers never passed to the module as `HTTP_*`: credentials, hop-by-hop, and `Proxy`, which
 * would become `HTTP_PROXY`, the variable HTTP clients take their proxy from ("httpoxy").
 */
const HIDDEN_HEADERS = new Set(["authorization", "connection", "proxy"]);

/** Parses a Basic `Authorization` header into its user name (ours: `AUTH_TYPE`/`REMOTE_USER`). */
function basicUser(header: string | null): string | undefined {
  const match = header?.match(/^Basic\s+([A-Za-z0-9+/=]+)\s*$/i);
  if (!match) return undefined;
  try {
    const decoded = new TextDecoder().decode(
      Uint8Array.from(atob(match[1]), (c) => c.charCodeAt(0)),
    );
    const colon = decoded.indexOf(":");
    return colon === -1 ? undefined : decoded.slice(0, colon);
  } catch {
    return undefined;
  }
}

/** The CGI variables set for every request, in the order they are set. */
const CGI_NAMES = [
  "AUTH_TYPE",
  "REMOTE_USER",
  "CONTENT_LENGTH",
  "CONTENT_TYPE",
  "GATEWAY_INTERFACE",
  "QUERY_STRING",
  "REMOTE_ADDR",
  "REMOTE_HOST",
  "REQUEST_METHOD",
  "SCRIPT_NAME",
  "PATH_INFO",
  "PATH_TRANSLATED",
  "X_RAW_PATH_INFO",
  "X_MATCHED_ROUTE",
  "X_FULL_URL",
  "SERVER_NAME",
  "SERVER_PORT",
  "SERVER_PROTOCOL",
  "SERVER_SOFTWARE",
] as const;

/** Most header names whose `HTTP_*` name is kept. */
const MAX_CACHED_HEADER_NAMES = 1024;

/**
 * The variables from files, `-e` and the module's `environment`, merged once per module
 * entry: later sources overwrite earlier ones in place, as a Map does. `slots` says where
 * each CGI variable goes (an index into `pairs`, or -1 to append).
 */
interface BaseEnvironment {
  pairs: [string, string][];
  index: Map<string, number>;
  slots: number[];
}

/** Header names and module environments seen before, with what they turn into. */
export class CgiEnvironments {
  /** Each module entry's merged variables, by its `environment` (kept as long as it is). */
  #bases = new WeakMap<
    Readonly<Record<string, string>>,
    { globalEnv: CgiDefaults["globalEnv"]; base: BaseEnvironment }
  >();
  /** `HTTP_*` names by header name; bounded, since clients choose header names. */
  #headerVariables = new Map<string, string>();

  #baseEnvironment(defaults: CgiDefaults): BaseEnvironment {
    const cached = this.#bases.get(defaults.moduleEnv);
    if (cached && cached.globalEnv === defaults.globalEnv) return cached.base;
    const merged = new Map<string, string>(defaults.globalEnv as [string, string][]);
    for (const [key, value] of Object.entries(defaults.moduleEnv)) merged.set(key, value);
    const pairs = [...merged];
    const index = new Map(pairs.map(([key], i) => [key, i]));
    const base = { pairs, index, slots: CGI_NAMES.map((name) => index.get(name) ?? -1) };
    this.#bases.set(defaults.moduleEnv, { globalEnv: defaults.globalEnv, base });
    return base;
  }

  #headerVariable(name: string): string {
    let variable = this.#headerVariables.get(name);
    if (variable === undefined) {
      variable = `HTTP_${name.toUpperCase().replaceAll("-", "_")}`;
      if (this.#headerVariables.size < MAX_CACHED_HEADER_NAMES) {
        this.#headerVariables.set(name, variable);
      }
    }
    return variable;
  }

  /**
   * Told of each request header dropped because its name holds `_`: `X_Forwarded_For` would
   * become the same `HTTP_X_FORWARDED_FOR` as the `X-Forwarded-For` a proxy sets, and
   * overwrite it (Apache drops them for CGI too).
   */
  onDroppedHeader: (name: string) => void = () => {};

  /**
   * The module's whole environment, in WAGI's build order: env files, `-e`, the module's
   * `environment`, the CGI variables, then `HTTP_*` (each later source overwrites in place).
   */
  build(request: CgiRequest, route: CgiRoute, defaults: CgiDefaults): [string, string][] {
    const base = this.#baseEnvironment(defaults);
    const env = base.pairs.slice();

    const fromHost = parseHostPort(request.authority ?? request.headers.get("host"));
    const serverName = fromHost.name ?? defaults.hostname.name ?? "localhost";
    const serverPort = fromHost.port ?? defaults.hostname.port ?? "3000";
    const rawQuery = request.target.query ?? "";
    const pathInfo = percentDecode(route.rawPathInfo);
    const authorization = request.headers.get("authorization");
    const user = authorization === null ? undefined : basicUser(authorization);

    // In the order of CGI_NAMES.
    const values = [
      user === undefined ? "" : "Basic",
      user ?? "",
      String(request.bodyLength),
      request.headers.get("content-type") ?? "",
      "CGI/1.1",
      rawQuery,
      request.remoteAddr,
      request.remoteAddr,
      request.method,
      route.scriptName,
      pathInfo,
      pathInfo,
      route.rawPathInfo,
      route.matchedRoute,
      `${request.scheme}://${serverName}:${serverPort}${request.target.path}` +
      (request.target.query === undefined ? "" : `?${request.target.query}`),
      serverName,
      serverPort,
      request.protocol ?? "HTTP/1.1",
      "WAGI/1",
    ];
    for (let i = 0; i < CGI_NAMES.length; i++) {
      const slot = base.slots[i];
      if (slot === -1) env.push([CGI_NAMES[i], values[i]]);
      else env[slot] = [CGI_NAMES[i], values[i]];
    }

    // Header variables never clash with CGI ones (those have no HTTP_ prefix); they may clash
    // with configured variables.
    let seen: Map<string, number> | undefined;
    for (const [name, value] of request.headers) {
      if (HIDDEN_HEADERS.has(name)) continue;
      if (name.includes("_")) {
        this.onDroppedHeader(name);
        continue;
      }
      const variable = this.#headerVariable(name);
      const slot = seen?.get(variable) ?? base.index.get(variable);
      if (slot !== undefined) {
        env[slot] = [variable, value];
        continue;
      }
      (seen ??= new Map()).set(variable, env.length);
      env.push([variable, value]);
    }
    return env;
  }
}

/**
 * The module's argv. Default: the raw path, then the query split on `&` (not decoded). With an
 * `argv` template: `${SCRIPT_NAME}` → raw path, `${ARGS}` → query with `&` → space, then split
 * on whitespace.
 */
export function cgiArgv(target: RawTarget, template: string | undefined): string[] {
  if (template === undefined) {
    return target.query === undefined ? [target.path] : [target.path, ...target.query.split("&")];
  }
  const args = (target.query ?? "").replaceAll("&", " ");
  return template
    .replaceAll("${SCRIPT_NAME}", target.path)
    .replaceAll("${ARGS}", args)
    .split(/\s+/)
    .filter((item) => item !== "");
}
