/**
 * `--watch`: file events on the configuration and module files, debounced, become one reload.
 * Directories are watched rather than files, so that a file replaced by a rename (what editors
 * and build tools do) is still seen.
 * @module
 */

import { dirname } from "../paths.ts";

/** Calls `onChange` once the watched files have stopped changing for `debounceMs`. */
export class FileWatcher {
  #files = new Set<string>();
  #dirs = "";
  #watcher: Deno.FsWatcher | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(
    readonly onChange: (changed: string[]) => void,
    readonly debounceMs = 300,
    /** Told when a directory cannot be watched (the rest still are). */
    readonly onError: (message: string) => void = () => {},
  ) {}

  /** Watches `files` (absolute paths) from now on, instead of those before. */
  watch(files: readonly string[]): void {
    if (this.#closed) return;
    this.#files = new Set(files);
    const dirs = [...new Set(files.map((file) => dirname(file)))].sort();
    if (dirs.join("\n") === this.#dirs) return;
    this.#dirs = dirs.join("\n");
    this.#watcher?.close();
    this.#watcher = undefined;
    const watchable = dirs.filter((dir) => {
      try {
        return Deno.statSync(dir).isDirectory;
      } catch {
        this.onError(`--watch: cannot watch ${dir}: it does not exist`);
        return false;
      }
    });
    if (watchable.length === 0) return;
    const watcher = this.#watcher = Deno.watchFs(watchable, { recursive: false });
    (async () => {
      const changed = new Set<string>();
      try {
        for await (const event of watcher) {
          for (const path of event.paths) if (this.#files.has(path)) changed.add(path);
          if (changed.size === 0) continue;
          clearTimeout(this.#timer);
          this.#timer = setTimeout(() => {
            const paths = [...changed];
            changed.clear();
            if (!this.#closed) this.onChange(paths);
          }, this.debounceMs);
        }
      } catch (error) {
        if (!this.#closed) this.onError(`--watch: ${(error as Error).message}`);
      }
    })();
  }

  /** Stops watching. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#watcher?.close();
  }
}
