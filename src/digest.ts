/**
 * SHA-256 as lower-case hex, for module identity and stderr log folders.
 * @module
 */

/** The SHA-256 of `data` (bytes, or a string as UTF-8) as 64 hex digits. */
export async function sha256Hex(data: Uint8Array<ArrayBuffer> | string): Promise<string> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
