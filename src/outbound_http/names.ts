/**
 * What the rest of the server needs to know about `wasi_experimental_http` without loading its
 * implementation (experimental_http.ts): the import names and the per-route options.
 * @module
 */

/** The import module name. */
export const HTTP_MODULE = "wasi_experimental_http";

/** The functions the import module provides. */
export const HTTP_FUNCTIONS = ["req", "close", "header_get", "headers_get_all", "body_read"];

/** How a module may use outbound HTTP. */
export interface OutboundOptions {
  /** `allowed_hosts`: absent → nothing is allowed. */
  allowedHosts?: readonly string[];
  /** `http_max_concurrency`: most responses open at once (undefined: no limit). */
  maxConcurrency?: number;
  /** A request (and reading its body) is abandoned after this long. */
  timeoutMs: number;
  /** Reading more than this many body bytes fails with a request error. */
  maxResponseBytes: number;
}

/** Defaults: 30 s per request, 16 MiB per response body. */
export const DEFAULT_OUTBOUND: OutboundOptions = {
  timeoutMs: 30_000,
  maxResponseBytes: 16 * 1024 * 1024,
};
