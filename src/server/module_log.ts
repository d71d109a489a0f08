/**
 * Module stderr logs: appended to `<log dir>/<sha256 hex of the route>/module.stderr` (docs/wagi.md, "Responses").
 * @module
 */

import { join } from "node:path";

/** Appends module stderr to per-route files under one directory. */
export class ModuleLog {
  #created = new Set<string>();
  constructor(readonly dir: string) {}

  /** The file a route's stderr goes to. */
  fileFor(logKey: string): string {
    return join(this.dir, logKey, "module.stderr");
  }

  /** Appends `bytes` to the route's log; does nothing for empty output. */
  async append(logKey: string, bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return;
    const folder = join(this.dir, logKey);
    if (!this.#created.has(folder)) {
      await Deno.mkdir(folder, { recursive: true });
      this.#created.add(folder);
    }
    await Deno.writeFile(join(folder, "module.stderr"), bytes, { append: true });
  }
}
