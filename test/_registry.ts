/**
 * A real OCI registry for tests: Debian's `docker-registry` (the CNCF distribution registry)
 * with filesystem storage on a loopback port, optionally behind htpasswd (basic) auth.
 * @module
 */

import { ROOT } from "./_fixtures.ts";
import { freePort } from "./_net.ts";
import { tempDir } from "./_temp.ts";

/** Whether `program` can be run here (it is installed). */
function installed(program: string, args: string[]): boolean {
  try {
    new Deno.Command(program, { args, stdout: "null", stderr: "null" }).outputSync();
    return true;
  } catch {
    return false;
  }
}

/** Why registry tests cannot run here, or undefined when they can. */
export const NO_REGISTRY = installed("docker-registry", ["--version"])
  ? undefined
  : "docker-registry is not installed (apt-get install docker-registry)";

/** The user and password the htpasswd file of test/fixtures/registry accepts. */
export const REGISTRY_USER = { username: "wagi", password: "secret-pass" };

/** Why token-auth registry tests cannot run here (they make a certificate with openssl). */
export const NO_TOKEN_AUTH = NO_REGISTRY ??
  (installed("openssl", ["version"]) ? undefined : "openssl is not installed");

/** A running registry. */
export interface Registry {
  /** `127.0.0.1:PORT`. */
  host: string;
  /** Where it stores blobs and manifests (`docker/registry/v2/…` below). */
  storage: string;
  /** Scopes the token endpoint was asked for, and by whom (`token` auth only). */
  tokenRequests: { scope: string; user: string | undefined }[];
  stop(): Promise<void>;
}

/**
 * Starts a registry. `auth: "basic"` asks for {@link REGISTRY_USER} (htpasswd); `auth:
 * "token"` sends clients to a token endpoint of the test's own (what Docker Hub and GHCR do):
 * anonymous tokens may pull, {@link REGISTRY_USER}'s may push too, other users are refused.
 */
export async function startRegistry(
  options: { auth?: "basic" | "token" } = {},
): Promise<Registry> {
  const port = freePort();
  const dir = await tempDir("wagi-registry-");
  const tokenRequests: Registry["tokenRequests"] = [];
  let tokenServer: Deno.HttpServer | undefined;
  let auth = "";
  if (options.auth === "basic") {
    auth =
      `auth:\n  htpasswd:\n    realm: wagi-test\n    path: ${ROOT}test/fixtures/registry/htpasswd\n`;
  } else if (options.auth === "token") {
    const endpoint = await startTokenEndpoint(dir, tokenRequests);
    tokenServer = endpoint.server;
    auth = `auth:\n  token:\n    realm: ${endpoint.realm}\n    service: ${TOKEN_SERVICE}\n` +
      `    issuer: ${TOKEN_ISSUER}\n    rootcertbundle: ${endpoint.certFile}\n`;
  }
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
      await tokenServer?.shutdown();
      throw new Error(`docker-registry did not answer on ${host} within 10 s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    host,
    storage: `${dir}/data`,
    tokenRequests,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
      await tokenServer?.shutdown().catch(() => {});
      tokenServer = undefined;
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

const TOKEN_SERVICE = "wagi-test-registry";
const TOKEN_ISSUER = "wagi-test-issuer";

const base64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

/** The DER bytes of the first PEM block of `pem`. */
function pemBytes(pem: string): Uint8Array {
  const body = pem.split(/-----[^-]+-----/)[1].replace(/\s+/g, "");
  return Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
}

/**
 * A token endpoint as the distribution registry's token auth expects: ES256 JWTs whose `x5c`
 * header carries a self-signed certificate the registry trusts (made with openssl).
 */
async function startTokenEndpoint(dir: string, requests: Registry["tokenRequests"]) {
  const certFile = `${dir}/token.crt`;
  const keyFile = `${dir}/token.key`;
  const made = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyFile,
      "-out",
      certFile,
      "-days",
      "1",
      "-subj",
      "/CN=wagi-test-token",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!made.success) throw new Error(new TextDecoder().decode(made.stderr));
  const cert = pemBytes(await Deno.readTextFile(certFile));
  const key = await crypto.subtle.importKey(
    "pkcs8",
    pemBytes(await Deno.readTextFile(keyFile)) as Uint8Array<ArrayBuffer>,
    { name: "ECDSA", namedCurve: "P-256" },
    false,
    ["sign"],
  );
  const port = freePort();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port, onListen: () => {} },
    async (request) => {
      const url = new URL(request.url);
      const scope = url.searchParams.get("scope") ?? "";
      const basic = request.headers.get("authorization")?.match(/^Basic (.+)$/)?.[1];
      const [user, password] = basic ? atob(basic).split(":") : [undefined, undefined];
      requests.push({ scope, user });
      if (
        user !== undefined &&
        (user !== REGISTRY_USER.username || password !== REGISTRY_USER.password)
      ) {
        return Response.json({ errors: [{ code: "UNAUTHORIZED", message: "bad user" }] }, {
          status: 401,
        });
      }
      const [type, name, actions] = scope.split(":");
      const granted = (actions ?? "").split(",").filter((a) => a === "pull" || user !== undefined);
      const now = Math.floor(Date.now() / 1000);
      const encode = (value: unknown) => base64url(new TextEncoder().encode(JSON.stringify(value)));
      const header = encode({
        alg: "ES256",
        typ: "JWT",
        x5c: [btoa(String.fromCharCode(...cert))],
      });
      const payload = encode({
        iss: TOKEN_ISSUER,
        sub: user ?? "",
        aud: TOKEN_SERVICE,
        exp: now + 300,
        nbf: now - 10,
        iat: now,
        jti: crypto.randomUUID(),
        access: type ? [{ type, name, actions: granted }] : [],
      });
      const signature = new Uint8Array(
        await crypto.subtle.sign(
          { name: "ECDSA", hash: "SHA-256" },
          key,
          new TextEncoder().encode(`${header}.${payload}`),
        ),
      );
      return Response.json({
        token: `${header}.${payload}.${base64url(signature)}`,
        expires_in: 300,
      });
    },
  );
  return { server, certFile, realm: `http://127.0.0.1:${port}/token` };
}
