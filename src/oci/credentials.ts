/**
 * Registry credentials from the Docker config file (`$DOCKER_CONFIG/config.json`, else
 * `~/.docker/config.json`): its `auths` entries, `auth` (base64 `user:password`) or
 * `username`/`password`. Credential helpers (`credsStore`, `credHelpers`) are not run.
 * @module
 */

/** A user name and password for a registry. */
export interface Credentials {
  username: string;
  password: string;
}

/** The Docker config file to read, from the environment. */
export function dockerConfigFile(env: (name: string) => string | undefined): string | undefined {
  const dir = env("DOCKER_CONFIG");
  if (dir) return `${dir}/config.json`;
  const home = env("HOME");
  return home ? `${home}/.docker/config.json` : undefined;
}

/** The keys an `auths` entry for `registry` may have, as Docker writes them. */
function keysFor(registry: string): string[] {
  const keys = [registry, `https://${registry}`, `http://${registry}`];
  if (registry === "docker.io") {
    keys.push("https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io");
  }
  return keys;
}

/**
 * The credentials `configText` (a Docker config file's text) holds for `registry`, if any.
 * Throws when the file is not what Docker writes, naming what is wrong.
 */
export function credentialsFor(configText: string, registry: string): Credentials | undefined {
  const config = JSON.parse(configText) as { auths?: Record<string, Record<string, unknown>> };
  const auths = config?.auths ?? {};
  for (const key of keysFor(registry)) {
    const entry = auths[key];
    if (!entry) continue;
    if (typeof entry.username === "string" && typeof entry.password === "string") {
      return { username: entry.username, password: entry.password };
    }
    if (typeof entry.auth === "string" && entry.auth !== "") {
      const decoded = atob(entry.auth);
      const colon = decoded.indexOf(":");
      if (colon === -1) throw new Error(`auths["${key}"].auth is not base64 of user:password`);
      return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
  }
  return undefined;
}

/** Reads the credentials for `registry` from the Docker config file, if it exists. */
export async function dockerCredentials(
  registry: string,
  env: (name: string) => string | undefined,
): Promise<Credentials | undefined> {
  const file = dockerConfigFile(env);
  if (!file) return undefined;
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`cannot read ${file}: ${(error as Error).message}`);
  }
  try {
    return credentialsFor(text, registry);
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`);
  }
}
