/**
 * Small path helpers for the tests.
 * @module
 */

import { fileURLToPath } from "node:url";

/** A file URL as a path, keeping a trailing slash. */
export function fromFileUrl(url: URL): string {
  const path = fileURLToPath(url);
  return url.pathname.endsWith("/") && !path.endsWith("/") ? path + "/" : path;
}
