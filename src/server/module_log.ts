/**
 * Module stderr logs: appended to `<log dir>/<sha256 hex of the route>/module.stderr`
 * (docs/wagi.md, "Responses"). A log that reaches its size limit is moved to
 * `module.stderr.1` (replacing the one before) and started anew, so that a route's logs take
 * at most twice the limit, whatever its modules write.
 * @module
 */

import { join } from "../paths.ts";

/** Default size at which a route's log is rotated. */
export const DEFAULT_LOG_MAX_BYTES = 16 * 1024 * 1024;

/** Appends module stderr to per-route files under one directory. */
export class ModuleLog {
  /** Each route's log: its size as far as known, and the appends queued for it. */
  #routes = new Map<string, { size?: number; queue: Promise<void> }>();

  /**
   * `shared`: other isolates of the process append to the same files (`--servers`), so a
   * route's size is read from its file before each append rather than counted here.
   */
  constructor(
    readonly dir: string,
    readonly maxBytes = DEFAULT_LOG_MAX_BYTES,
    readonly shared = false,
  ) {}

  /** The file a route's stderr goes to. */
  fileFor(logKey: string): string {
    return join(this.dir, logKey, "module.stderr");
  }

  /**
   * Appends `bytes` to the route's log; does nothing for empty output. Appends to one route
   * happen one after the other, in the order asked.
   */
  append(logKey: string, bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return Promise.resolve();
    let route = this.#routes.get(logKey);
    if (!route) {
      route = { queue: Promise.resolve() };
      this.#routes.set(logKey, route);
    }
    const state = route;
    const appended = state.queue.then(() => this.#append(logKey, state, bytes));
    // The next append waits for this one, whether it failed or not.
    state.queue = appended.catch(() => {});
    return appended;
  }

  async #append(logKey: string, state: { size?: number }, bytes: Uint8Array): Promise<void> {
    const file = this.fileFor(logKey);
    if (state.size === undefined) {
      await Deno.mkdir(join(this.dir, logKey), { recursive: true });
    }
    if (state.size === undefined || this.shared) {
      state.size = await Deno.stat(file).then((info) => info.size, () => 0);
    }
    // One write larger than the limit keeps its end, the latest of what was said.
    const kept = bytes.length > this.maxBytes
      ? bytes.subarray(bytes.length - this.maxBytes)
      : bytes;
    if (state.size + kept.length > this.maxBytes) {
      await Deno.rename(file, `${file}.1`).catch(() => {});
      state.size = 0;
    }
    await Deno.writeFile(file, kept, { append: true });
    state.size += kept.length;
  }
}
