/**
 * What an HTTP component is handed for a request: its method, raw target, scheme, authority
 * and every header line (a WAGI module gets CGI variables instead, see cgi/request.ts).
 * @module
 */

import type { RawTarget } from "../cgi/request.ts";
import type { HttpRequestHead } from "../run/module_component.ts";

/** The head of `request`, whose raw target is `target`, as a component sees it. */
export function httpRequestHead(
  request: Request,
  target: RawTarget,
  scheme: "http" | "https",
): HttpRequestHead {
  const headers: [string, string][] = [];
  // Headers joins repeated fields into one (comma-separated), but keeps each Set-Cookie.
  for (const [name, value] of request.headers) headers.push([name, value]);
  return {
    method: request.method,
    pathWithQuery: target.query === undefined ? target.path : `${target.path}?${target.query}`,
    scheme,
    authority: request.headers.get("host") ?? new URL(request.url).host,
    headers,
  };
}
