/**
 * A real OCI registry for tests: Debian's `docker-registry` (the CNCF distribution registry)
 * with filesystem storage on a loopback port, optionally behind htpasswd (basic) auth.
 * @module
 */

import { ROOT } from "./_fixtures.ts";
import { freePort } from "./_net.ts";
import { tempDir } from "./_temp.ts";

/** Why registry tests cannot run here, or undefined when they can. */
export const NO_REGISTRY = (() => {
  try {
    new Deno.Command("docker-registry", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync();
    return undefined;
  } catch {
    return "docker-registry is not installed (apt-get install docker-registry)";
  }
})();

/** The user and password the htpasswd file of test/fixtures/registry accepts. */
export const REGISTRY_USER = { username: "wagi", password: "secret-pass" };

/** A running registry. */
export interface Registry {
  /** `127.0.0.1:PORT`. */
  host: string;
  /** Where it stores blobs and manifests (`docker/registry/v2/…` below). */
  storage: string;
  stop(): Promise<void>;
}

/** Starts a registry; with `auth`, it asks for {@link REGISTRY_USER}. */
export async function startRegistry(options: { auth?: boolean } = {}): Promise<Registry> {
  const port = freePort();
  const dir = await tempDir("wagi-registry-");
  const auth = options.auth
    ? `auth:\n  htpasswd:\n    realm: wagi-test\n    path: ${ROOT}test/fixtures/registry/htpasswd\n`
    : "";
  await Deno.writeTextFile(
    `${dir}/config.yml`,
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n` +
      `storage:\n  filesystem:\n    rootdirectory: ${dir}/data\n` +
      `http:\n  addr: 127.0.0.1:${port}\n${auth}`,
  );
  const child = new Deno.Command("docker-registry", {
    args: ["serve", `${dir}/config.yml`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  const host = `127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const response = await fetch(`http://${host}/v2/`);
      await response.body?.cancel();
      // 401 when it asks for credentials: it is up all the same.
      if (response.status === 200 || response.status === 401) break;
    } catch { /* not yet */ }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`docker-registry did not answer on ${host} within 10 s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    host,
    storage: `${dir}/data`,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
    },
  };
}

/** Writes a Docker config file with credentials for `host`; returns its directory. */
export async function dockerConfigWith(
  host: string,
  credentials: { username: string; password: string },
): Promise<string> {
  const dir = await tempDir("wagi-docker-config-");
  const auth = btoa(`${credentials.username}:${credentials.password}`);
  await Deno.writeTextFile(
    `${dir}/config.json`,
    JSON.stringify({ auths: { [host]: { auth } } }),
  );
  return dir;
}
