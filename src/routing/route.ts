/**
 * WAGI route patterns: exact paths and `/prefix/...` wildcards, matched against the raw path.
 * @module
 */

/** A parsed `route` value. */
export interface RoutePattern {
  /** The route as written, e.g. `/foo/...`. */
  readonly text: string;
  /** For `/foo/...` the prefix `/foo` (`""` for `/...`); undefined for an exact route. */
  readonly prefix: string | undefined;
}

/** What a match tells the CGI layer. */
export interface RouteMatch {
  /** `SCRIPT_NAME`: the exact route, or the prefix (`/` for `/...`). */
  scriptName: string;
  /** `X_RAW_PATH_INFO`: the raw path after the prefix, `""` for an exact match. */
  rawPathInfo: string;
}

const WILDCARD = "/...";

/** Parses a route; a route must start with `/`. */
export function parseRoute(text: string): RoutePattern {
  if (!text.startsWith("/")) throw new Error(`route '${text}' must start with '/'`);
  if (text.endsWith(WILDCARD)) return { text, prefix: text.slice(0, -WILDCARD.length) };
  return { text, prefix: undefined };
}

/** Matches a raw (percent-encoded, query-less) path against a pattern. */
export function matchRoute(pattern: RoutePattern, rawPath: string): RouteMatch | undefined {
  const prefix = pattern.prefix;
  if (prefix === undefined) {
    return rawPath === pattern.text ? { scriptName: pattern.text, rawPathInfo: "" } : undefined;
  }
  if (rawPath !== prefix && !rawPath.startsWith(prefix + "/")) return undefined;
  return { scriptName: prefix === "" ? "/" : prefix, rawPathInfo: rawPath.slice(prefix.length) };
}

/**
 * Joins a parent route and a `_routes` sub-route with exactly one `/`: the parent loses its
 * `/...`, e.g. `/foo/...` + `/bar` → `/foo/bar`.
 */
export function joinSubroute(parent: string, subroute: string): string {
  const base = (parent.endsWith(WILDCARD) ? parent.slice(0, -WILDCARD.length) : parent)
    .replace(/\/+$/, "");
  return `${base}/${subroute.replace(/^\/+/, "")}`;
}

/** One line of a module's `_routes` output. */
export interface Subroute {
  route: string;
  entrypoint: string;
}

/**
 * Parses what a module's `_routes` printed: one `SUBROUTE ENTRYPOINT` per non-empty line.
 * Throws naming the line when a line has not exactly two fields.
 */
export function parseRoutesOutput(output: string): Subroute[] {
  const routes: Subroute[] = [];
  for (const line of output.split(/\r?\n/)) {
    const fields = line.trim().split(/\s+/).filter((f) => f !== "");
    if (fields.length === 0) continue;
    if (fields.length !== 2) {
      throw new Error(`_routes printed '${line.trim()}': expected 'SUBROUTE ENTRYPOINT'`);
    }
    routes.push({ route: fields[0], entrypoint: fields[1] });
  }
  return routes;
}
