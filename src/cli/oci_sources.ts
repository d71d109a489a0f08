/**
 * The `oci:` entries of a configuration, pulled into the module cache before their modules
 * load (at start and at every reload): each distinct reference once, in parallel.
 * @module
 */

import { ConfigError, type ModulesConfig } from "../config/modules_toml.ts";
import type { PulledModule, PullOptions } from "../oci/pull.ts";
import type { Logger } from "../server/logger.ts";

/** How `oci:` modules are pulled and kept. */
export interface OciSourceOptions {
  /** The module cache in use (read when first needed); undefined → a temp dir. */
  dir: () => string | undefined;
  /** `--offline`: only what is in the module cache. */
  offline: boolean;
  /** `--insecure-registry`: registries spoken to in plain HTTP. */
  insecure: readonly string[];
  env: (name: string) => string | undefined;
  logger: Logger;
}

/** Pulls the `oci:` modules of configurations; `close` removes a temp dir it made. */
export class OciSources {
  #pull: PullOptions | undefined;
  #tempDir: string | undefined;

  constructor(readonly options: OciSourceOptions) {}

  /** Sets `modulePath` of every `oci:` entry of `config`; throws naming the entry. */
  async fetch(config: ModulesConfig): Promise<void> {
    const entries = config.entries.filter((entry) => entry.oci);
    if (entries.length === 0) return;
    const pull = this.#pull ??= await this.#pullOptions();
    // Loaded only by a configuration that pulls: a start without oci: modules skips it.
    const { pullModule } = await import("../oci/pull.ts");
    const pulls = new Map<string, Promise<PulledModule>>();
    await Promise.all(entries.map(async (entry) => {
      const ref = entry.oci!;
      let pulled = pulls.get(ref.canonical);
      if (!pulled) {
        pulled = pullModule(ref, pull);
        pulls.set(ref.canonical, pulled);
        pulled.then(({ digest, how }) => {
          if (how === "fallback") return; // said with the reason already
          this.options.logger.info(
            how === "pulled"
              ? `${entry.module}: pulled module ${digest}`
              : `${entry.module}: module ${digest} from the module cache` +
                (how === "stored" ? " (the registry still names it)" : ""),
          );
        }, () => {});
      }
      try {
        entry.modulePath = (await pulled).path;
      } catch (error) {
        // The registry's messages start with the reference, which this one names already.
        const why = (error as Error).message.replace(`${ref.canonical}: `, "");
        throw new ConfigError(
          `${config.file}:${entry.line}: [[module]] #${entry.index} (route '${entry.route}'): ` +
            `module '${entry.module}': ${why}`,
        );
      }
    }));
    // What moved tags left behind goes, once everything named now is in place.
    const removed = await pull.store.prune();
    if (removed > 0) {
      this.options.logger.info(`removed ${removed} pulled modules no reference names any more`);
    }
  }

  /** Removes the temp dir pulled modules went to, if one was made. */
  async close(): Promise<void> {
    if (this.#tempDir) await Deno.remove(this.#tempDir, { recursive: true }).catch(() => {});
  }

  async #pullOptions(): Promise<PullOptions> {
    const { logger, env } = this.options;
    let dir = this.options.dir();
    if (dir !== undefined) {
      try {
        await Deno.mkdir(`${dir}/oci`, { recursive: true });
        await Deno.writeFile(`${dir}/oci/.writable`, new Uint8Array());
        await Deno.remove(`${dir}/oci/.writable`);
      } catch (error) {
        logger.warn(
          `module cache ${dir} cannot be written (${(error as Error).message}): pulled ` +
            "modules go to a temp dir and are pulled again at every start",
        );
        dir = undefined;
      }
    }
    if (dir === undefined) dir = this.#tempDir = await Deno.makeTempDir({ prefix: "wagi-oci-" });
    const [{ OciStore }, { RegistryClient }, { dockerCredentials }] = await Promise.all([
      import("../oci/store.ts"),
      import("../oci/registry.ts"),
      import("../oci/credentials.ts"),
    ]);
    return {
      store: new OciStore(dir),
      client: new RegistryClient({
        insecure: this.options.insecure,
        credentials: (registry) => dockerCredentials(registry, env),
      }),
      offline: this.options.offline,
      warn: (message) => logger.warn(message),
    };
  }
}
