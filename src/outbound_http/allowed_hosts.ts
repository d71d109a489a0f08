/**
 * `allowed_hosts`: which hosts a module may send outbound HTTP requests to (docs/wagi.md, "Outbound HTTP").
 * @module
 */

/** The allow-all entry. */
export const ALLOW_ALL = "insecure:allow-all";

/** A compiled allow-list. */
export interface AllowList {
  /** True when a request to `url` may be sent. */
  allows(url: URL): boolean;
}

/** The host of an allow-list entry: the host of a URL, or the entry itself if it is not one. */
function hostOf(entry: string): string {
  try {
    return new URL(entry).hostname.toLowerCase();
  } catch {
    return entry.trim().toLowerCase();
  }
}

/**
 * Builds the allow-list of a module. Absent: nothing is allowed. Each entry is a URL of which
 * only the host counts (scheme, port and path do not); `insecure:allow-all` allows all.
 */
export function allowList(entries: readonly string[] | undefined): AllowList {
  if (!entries) return { allows: () => false };
  if (entries.includes(ALLOW_ALL)) return { allows: () => true };
  const hosts = new Set(entries.map(hostOf));
  return { allows: (url) => hosts.has(url.hostname.toLowerCase()) };
}
