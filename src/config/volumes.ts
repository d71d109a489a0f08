/**
 * Volume specifications shared by `modules.toml` and `run --dir`: a host path with an optional
 * `:ro` suffix that mounts it read-only.
 * @module
 */

/** Splits a trailing `:ro` (read-only) or `:rw` (the default) off a volume's host path. */
export function parseVolume(value: string): { path: string; readOnly: boolean } {
  if (value.endsWith(":ro")) return { path: value.slice(0, -3), readOnly: true };
  if (value.endsWith(":rw")) return { path: value.slice(0, -3), readOnly: false };
  return { path: value, readOnly: false };
}

/** A host directory made visible to a module at `guestPath` (a WASI preopen). */
export interface Volume {
  guestPath: string;
  hostPath: string;
  /** Mounted read-only: nothing beneath it may be created, changed or removed. */
  readOnly?: boolean;
}
