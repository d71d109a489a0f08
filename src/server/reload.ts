/**
 * Configuration reloads, one at a time: a new configuration is loaded whole (parsed, modules
 * compiled, routes built) while the one before keeps serving, then switched to at once; a
 * failed load changes nothing. Requests for a reload while one is queued share it.
 * @module
 */

import type { Logger } from "./logger.ts";

/** What a reloader does with configurations of type `C`. */
export interface ReloaderOptions<C> {
  /** Loads the configuration as it is now; throws naming the file, line and reason. */
  load: () => Promise<C>;
  /** Switches to a loaded configuration (synchronously: no request sees half of it). */
  apply: (loaded: C, took: number, why: string) => void;
  /** Told of a failed reload, after it was logged. */
  failed?: (error: Error) => void;
  logger: Logger;
}

/** Reloads on request: from SIGHUP, from a file watcher, from a test. */
export class Reloader<C> {
  #queue: Promise<unknown> = Promise.resolve();
  #pending: Promise<boolean> | undefined;
  #stopped = false;

  constructor(readonly options: ReloaderOptions<C>) {}

  /**
   * Reloads after the reload in progress, if any; resolves to whether the configuration was
   * switched. A request made while another waits to start is served by that one.
   */
  request(why: string): Promise<boolean> {
    if (this.#pending) return this.#pending;
    const next = this.#queue.then(() => {
      this.#pending = undefined;
      return this.#reload(why);
    });
    this.#pending = next;
    this.#queue = next;
    return next;
  }

  /** No reload starts or switches from now on (the server stops). */
  stop(): void {
    this.#stopped = true;
  }

  async #reload(why: string): Promise<boolean> {
    if (this.#stopped) return false;
    const { logger } = this.options;
    logger.info(`reloading the configuration (${why})`);
    const started = performance.now();
    try {
      const loaded = await this.options.load();
      if (this.#stopped) return false;
      this.options.apply(loaded, performance.now() - started, why);
      return true;
    } catch (error) {
      logger.error(
        `reload failed, still serving the configuration loaded before: ${(error as Error).message}`,
      );
      this.options.failed?.(error as Error);
      return false;
    }
  }
}
