/**
 * A client of the OCI distribution API for WebAssembly modules in the wasm-to-oci layout: pull
 * a manifest and its first `application/vnd.wasm.content.layer.v1+wasm` layer, push a module as
 * such. Speaks the registry token flow (`WWW-Authenticate: Bearer` → the token endpoint,
 * anonymously or with credentials) and basic authentication.
 * @module
 */

import { sha256Hex } from "../digest.ts";
import type { Credentials } from "./credentials.ts";
import { type OciReference, registryBase } from "./reference.ts";

/** The media type of a module's layer (wasm-to-oci). */
export const WASM_LAYER = "application/vnd.wasm.content.layer.v1+wasm";
/** The media type of the (empty) config blob pushed with a module. */
export const WASM_CONFIG = "application/vnd.wasm.config.v1+json";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const INDEXES = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
];

/** Largest module pulled: a bigger layer is refused before it is downloaded. */
export const MAX_MODULE_BYTES = 256 * 1024 * 1024;
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/** Why a registry operation failed: `unreachable` and `server` may be worth retrying later. */
export type RegistryFailure = "unreachable" | "server" | "not found" | "auth" | "invalid";

/** A failed registry operation; the message says what was asked and what the registry said. */
export class RegistryError extends Error {
  override name = "RegistryError";
  constructor(readonly failure: RegistryFailure, message: string) {
    super(message);
  }
}

/** How the client reaches registries. */
export interface RegistryClientOptions {
  /** Registries (`HOST[:PORT]`) spoken to in plain HTTP besides loopback ones. */
  insecure?: readonly string[];
  /** The credentials for a registry, if any (the Docker config file). */
  credentials?: (registry: string) => Promise<Credentials | undefined>;
  /** How long one HTTP exchange may take. */
  timeoutMs?: number;
}

/** What a reference resolved to: its manifest's digest and the module's layer. */
export interface ResolvedModule {
  manifestDigest: string;
  layerDigest: string;
  layerSize: number;
}

/** A descriptor as manifests hold them. */
interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

/** Parses `WWW-Authenticate: Scheme k="v", k2="v2"`. */
export function parseChallenge(
  header: string,
): { scheme: string; params: Record<string, string> } | undefined {
  const match = header.match(/^\s*(\w+)\s*(.*)$/s);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  for (
    const [, key, quoted, bare] of match[2].matchAll(/(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)
  ) {
    params[key.toLowerCase()] = quoted !== undefined ? quoted.replace(/\\(.)/g, "$1") : bare;
  }
  return { scheme: match[1].toLowerCase(), params };
}

/** The registry's own explanation from an error body (`{"errors":[{code,message}]}`). */
async function registrySays(response: Response): Promise<string> {
  // A registry chooses how much it says: only the start is read.
  const bytes = await readUpTo(response, 64 * 1024, true).catch(() => undefined);
  const text = bytes ? new TextDecoder().decode(bytes) : "";
  try {
    const errors = (JSON.parse(text) as { errors?: { code?: string; message?: string }[] }).errors;
    if (errors?.length) {
      return errors.map((e) => [e.code, e.message].filter(Boolean).join(": ")).join("; ");
    }
  } catch { /* not JSON */ }
  return text.trim().slice(0, 200) || response.statusText;
}

/**
 * Reads at most `max` bytes of a body; undefined when there are more (or, with `truncate`,
 * the first `max`).
 */
async function readUpTo(
  response: Response,
  max: number,
  truncate = false,
): Promise<Uint8Array | undefined> {
  if (!response.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let length = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { value: chunk, done } = await reader.read();
    if (done) break;
    length += chunk.length;
    if (length > max) {
      await reader.cancel().catch(() => {});
      if (!truncate) return undefined;
      chunks.push(chunk.subarray(0, chunk.length - (length - max)));
      length = max;
      break;
    }
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/** Pulls and pushes modules; remembers the tokens it was given, per registry and scope. */
export class RegistryClient {
  readonly #authorization = new Map<string, string>();

  constructor(readonly options: RegistryClientOptions = {}) {}

  /** Resolves `ref` to its manifest and finds the module's layer in it. */
  async resolve(ref: OciReference): Promise<ResolvedModule> {
    const target = ref.digest ?? ref.tag!;
    const response = await this.#send(ref, "pull", `manifests/${target}`, {
      headers: { accept: [OCI_MANIFEST, DOCKER_MANIFEST, ...INDEXES].join(", ") },
    });
    if (!response.ok) throw await this.#failure(ref, response, `manifest '${target}'`);
    const bytes = await readUpTo(response, MAX_MANIFEST_BYTES);
    if (!bytes) {
      throw new RegistryError("invalid", `${ref.canonical}: manifest larger than 4 MiB`);
    }
    const manifestDigest = `sha256:${await sha256Hex(bytes as Uint8Array<ArrayBuffer>)}`;
    if (ref.digest && ref.digest !== manifestDigest) {
      throw new RegistryError(
        "invalid",
        `${ref.canonical}: digest mismatch: the registry sent a manifest of digest ` +
          manifestDigest,
      );
    }
    let manifest: { mediaType?: string; layers?: Descriptor[] };
    try {
      manifest = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      throw new RegistryError("invalid", `${ref.canonical}: the manifest is not JSON`);
    }
    const type = manifest.mediaType ?? response.headers.get("content-type") ?? "";
    if (INDEXES.some((index) => type.startsWith(index))) {
      throw new RegistryError(
        "invalid",
        `${ref.canonical}: is an index of manifests (a multi-platform image), not a ` +
          "WebAssembly module",
      );
    }
    const layers = Array.isArray(manifest.layers) ? manifest.layers : [];
    const layer = layers.find((l) => l?.mediaType === WASM_LAYER);
    if (!layer) {
      const types = layers.map((l) => l?.mediaType).join(", ") || "none";
      throw new RegistryError(
        "invalid",
        `${ref.canonical}: no layer of media type ${WASM_LAYER} (its layers: ${types})`,
      );
    }
    if (!/^sha256:[a-f0-9]{64}$/.test(layer.digest) || !Number.isSafeInteger(layer.size)) {
      throw new RegistryError(
        "invalid",
        `${ref.canonical}: the module's layer descriptor is invalid`,
      );
    }
    return { manifestDigest, layerDigest: layer.digest, layerSize: layer.size };
  }

  /** Downloads the blob `digest` of `ref`'s repository, checked against its digest and size. */
  async blob(ref: OciReference, digest: string, size: number): Promise<Uint8Array> {
    if (size > MAX_MODULE_BYTES) {
      throw new RegistryError(
        "invalid",
        `${ref.canonical}: the module is ${size} bytes, over the ${MAX_MODULE_BYTES} pulled at most`,
      );
    }
    const response = await this.#send(ref, "pull", `blobs/${digest}`, {});
    if (!response.ok) throw await this.#failure(ref, response, `blob ${digest}`);
    const bytes = await readUpTo(response, size);
    const actual = bytes && `sha256:${await sha256Hex(bytes as Uint8Array<ArrayBuffer>)}`;
    if (!bytes || bytes.length !== size || actual !== digest) {
      throw new RegistryError(
        "invalid",
        `${ref.canonical}: digest mismatch: blob ${digest} (${size} bytes) arrived as ` +
          (bytes ? `${actual} (${bytes.length} bytes)` : `more than ${size} bytes`),
      );
    }
    return bytes;
  }

  /**
   * Pushes `module` (binary WebAssembly) to `ref` in the wasm-to-oci layout: an empty config,
   * the module as one layer, a manifest tagged (or addressed by digest). Returns the
   * manifest's digest.
   */
  async push(ref: OciReference, module: Uint8Array, title?: string): Promise<string> {
    const config = new TextEncoder().encode("{}");
    const configDescriptor = await this.#upload(ref, config, WASM_CONFIG);
    const layer = await this.#upload(ref, module, WASM_LAYER);
    const manifest = new TextEncoder().encode(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: configDescriptor,
      layers: [{
        ...layer,
        ...(title ? { annotations: { "org.opencontainers.image.title": title } } : {}),
      }],
    }));
    const manifestDigest = `sha256:${await sha256Hex(manifest)}`;
    if (ref.digest && ref.digest !== manifestDigest) {
      throw new RegistryError(
        "invalid",
        `${ref.canonical}: the pushed manifest would have digest ${manifestDigest}`,
      );
    }
    const response = await this.#send(ref, "push", `manifests/${ref.tag ?? manifestDigest}`, {
      method: "PUT",
      headers: { "content-type": OCI_MANIFEST },
      body: manifest,
    });
    if (!response.ok) throw await this.#failure(ref, response, "manifest upload");
    await response.body?.cancel();
    return manifestDigest;
  }

  async #upload(ref: OciReference, bytes: Uint8Array, mediaType: string): Promise<Descriptor> {
    const digest = `sha256:${await sha256Hex(bytes as Uint8Array<ArrayBuffer>)}`;
    const descriptor = { mediaType, digest, size: bytes.length };
    const head = await this.#send(ref, "push", `blobs/${digest}`, { method: "HEAD" });
    await head.body?.cancel();
    if (head.ok) return descriptor;
    const started = await this.#send(ref, "push", "blobs/uploads/", { method: "POST" });
    await started.body?.cancel();
    const location = started.headers.get("location");
    if (started.status !== 202 || !location) {
      throw await this.#failure(ref, started, "blob upload");
    }
    const url = new URL(location, `${registryBase(ref.registry, this.options.insecure)}/`);
    url.searchParams.set("digest", digest);
    const put = await this.#send(ref, "push", url, {
      method: "PUT",
      headers: { "content-type": "application/octet-stream" },
      body: bytes as Uint8Array<ArrayBuffer>,
    });
    if (!put.ok) throw await this.#failure(ref, put, `blob upload of ${digest}`);
    await put.body?.cancel();
    return descriptor;
  }

  /** The error for an answer that is not a success, named by what was asked. */
  async #failure(ref: OciReference, response: Response, what: string): Promise<RegistryError> {
    const says = await registrySays(response);
    const failure: RegistryFailure = response.status === 404
      ? "not found"
      : response.status === 401 || response.status === 403
      ? "auth"
      : response.status >= 500
      ? "server"
      : "invalid";
    const meaning = failure === "not found"
      ? "not found (no such repository or tag)"
      : failure === "auth"
      ? "access refused"
      : `HTTP ${response.status}`;
    return new RegistryError(failure, `${ref.canonical}: ${what}: ${meaning}: ${says}`);
  }

  /**
   * One exchange with the registry of `ref` (`path` under `/v2/REPO/`, or a URL), answering an
   * authentication challenge once.
   */
  async #send(
    ref: OciReference,
    access: "pull" | "push",
    path: string | URL,
    init: RequestInit,
  ): Promise<Response> {
    const base = registryBase(ref.registry, this.options.insecure);
    const url = typeof path === "string" ? `${base}/v2/${ref.repository}/${path}` : path;
    const scope = `repository:${ref.repository}:${access === "pull" ? "pull" : "pull,push"}`;
    const key = `${ref.registry} ${scope}`;
    const send = (authorization?: string) => {
      const headers = new Headers(init.headers);
      if (authorization) headers.set("authorization", authorization);
      return this.#fetch(ref, url, { ...init, headers });
    };
    let response = await send(this.#authorization.get(key));
    if (response.status !== 401) return response;
    const challenge = parseChallenge(response.headers.get("www-authenticate") ?? "");
    await response.body?.cancel();
    const credentials = await this.options.credentials?.(ref.registry);
    let authorization: string;
    if (challenge?.scheme === "bearer" && challenge.params.realm) {
      authorization = `Bearer ${await this.#token(ref, challenge.params, scope, credentials)}`;
    } else if (challenge?.scheme === "basic") {
      if (!credentials) {
        throw new RegistryError(
          "auth",
          `${ref.canonical}: the registry asks for a user name and password, and the Docker ` +
            `config file has none for ${ref.registry}`,
        );
      }
      authorization = `Basic ${btoa(`${credentials.username}:${credentials.password}`)}`;
    } else {
      throw new RegistryError(
        "auth",
        `${ref.canonical}: the registry refused access with a challenge this client does not ` +
          `speak: '${response.headers.get("www-authenticate") ?? "(none)"}'`,
      );
    }
    response = await send(authorization);
    if (response.status === 401) {
      await response.body?.cancel();
      throw new RegistryError(
        "auth",
        `${ref.canonical}: access refused ${
          credentials ? `to user '${credentials.username}'` : "without credentials"
        } (${access})`,
      );
    }
    this.#authorization.set(key, authorization);
    return response;
  }

  /** A token from the registry's token endpoint for `scope`. */
  async #token(
    ref: OciReference,
    params: Record<string, string>,
    scope: string,
    credentials: Credentials | undefined,
  ): Promise<string> {
    let url: URL;
    try {
      url = new URL(params.realm);
    } catch {
      throw new RegistryError(
        "auth",
        `${ref.canonical}: the token realm '${params.realm}' is not a URL`,
      );
    }
    // Credentials travel in clear only where the registry itself is spoken to in clear.
    const plainOk = registryBase(url.host, this.options.insecure).startsWith("http:");
    if (url.protocol !== "https:" && !(url.protocol === "http:" && plainOk)) {
      throw new RegistryError(
        "auth",
        `${ref.canonical}: the registry sends clients to a token endpoint that is not HTTPS ` +
          `(${url.origin}); add --insecure-registry ${url.host} to allow it`,
      );
    }
    if (params.service) url.searchParams.set("service", params.service);
    url.searchParams.set("scope", params.scope ?? scope);
    const headers = new Headers();
    if (credentials) {
      headers.set(
        "authorization",
        `Basic ${btoa(`${credentials.username}:${credentials.password}`)}`,
      );
    }
    const response = await this.#fetch(ref, url, { headers });
    if (!response.ok) {
      const says = await registrySays(response);
      throw new RegistryError(
        response.status === 401 || response.status === 403 ? "auth" : "server",
        `${ref.canonical}: the token endpoint ${url.origin}${url.pathname} refused ` +
          `${credentials ? `user '${credentials.username}'` : "anonymous access"}: ` +
          `HTTP ${response.status}: ${says}`,
      );
    }
    const body = await readUpTo(response, 1024 * 1024);
    let token: unknown;
    try {
      const json = JSON.parse(new TextDecoder().decode(body));
      token = json.token ?? json.access_token;
    } catch { /* below */ }
    if (typeof token !== "string" || token === "") {
      throw new RegistryError("auth", `${ref.canonical}: the token endpoint sent no token`);
    }
    return token;
  }

  async #fetch(ref: OciReference, url: string | URL, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, {
        ...init,
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 60_000),
      });
    } catch (error) {
      // Deno's reason is in the cause ("dns error: …", "Connection refused"), after the URL.
      const cause = (error as Error).cause;
      const why = error instanceof DOMException && error.name === "TimeoutError"
        ? `no answer within ${(this.options.timeoutMs ?? 60_000) / 1000} s`
        : cause instanceof Error
        ? cause.message.replace(/^error sending request for url \([^)]*\): /, "")
          .replace(/^client error \(Connect\): /, "")
        : (error as Error).message;
      throw new RegistryError(
        "unreachable",
        `${ref.canonical}: cannot reach ${new URL(url).origin}: ${why}`,
      );
    }
  }
}
