/**
 * `oci:` module references, as WAGI 0.8.1 reads them (Docker's reference grammar):
 * `oci:HOST[:PORT]/REPO[:TAG][@sha256:DIGEST]`, `oci://` accepted too. A name without a
 * registry host is on Docker Hub (`library/` added to a single-component name).
 * @module
 */

/** A parsed `oci:` reference. */
export interface OciReference {
  /** `HOST[:PORT]` as written (Docker Hub's is `docker.io`). */
  registry: string;
  /** The repository path, e.g. `wagi/hello`. */
  repository: string;
  /** The tag; `latest` when neither tag nor digest is given. */
  tag?: string;
  /** `sha256:…` when the reference pins the manifest. */
  digest?: string;
  /** The reference in canonical form, without the `oci:` prefix. */
  canonical: string;
}

/** A reference that cannot be parsed; the message says which part is wrong. */
export class OciReferenceError extends Error {
  override name = "OciReferenceError";
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HOST =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;

/** True when `module` names an `oci:` source rather than a file. */
export function isOciSource(module: string): boolean {
  return module.startsWith("oci:");
}

/** Parses `oci:…` (or the part after `oci:`); throws {@link OciReferenceError}. */
export function parseOciReference(text: string): OciReference {
  let rest = text.startsWith("oci:") ? text.slice(4) : text;
  if (rest.startsWith("//")) rest = rest.slice(2);
  if (rest === "") throw new OciReferenceError("empty reference");
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) {
      throw new OciReferenceError(`digest '${digest}' is not sha256: and 64 lower-case hex digits`);
    }
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const colon = rest.lastIndexOf(":");
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new OciReferenceError(`tag '${tag}' is not a valid tag`);
  }
  const parts = rest.split("/");
  // The first part is a registry when it looks like a host, as Docker decides.
  let registry = "docker.io";
  if (
    parts.length > 1 &&
    (parts[0].includes(".") || parts[0].includes(":") || parts[0] === "localhost" ||
      parts[0].startsWith("["))
  ) {
    registry = parts.shift()!;
    if (!HOST.test(registry)) throw new OciReferenceError(`registry '${registry}' is not a host`);
  }
  for (const part of parts) {
    if (!COMPONENT.test(part)) {
      throw new OciReferenceError(
        `repository '${parts.join("/")}': '${part}' is not a valid name component ` +
          "(lower-case letters, digits, and . _ - between them)",
      );
    }
  }
  if (registry === "docker.io" && parts.length === 1) parts.unshift("library");
  const repository = parts.join("/");
  if (tag === undefined && digest === undefined) tag = "latest";
  const canonical = `${registry}/${repository}${tag ? `:${tag}` : ""}${digest ? `@${digest}` : ""}`;
  return { registry, repository, tag, digest, canonical };
}

/** True when the registry is on this machine: spoken to in plain HTTP (WAGI's rule, widened). */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.replace(/:[0-9]+$/, "");
  return host === "localhost" || host === "127.0.0.1" || host === "[::1]" ||
    /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * The base URL of the registry's API: HTTPS, except plain HTTP for loopback registries and for
 * those named in `insecure` (`--insecure-registry`).
 */
export function registryBase(registry: string, insecure: readonly string[] = []): string {
  const api = registry === "docker.io" ? "registry-1.docker.io" : registry;
  const plain = isLoopbackRegistry(registry) || insecure.includes(registry);
  return `${plain ? "http" : "https"}://${api}`;
}
