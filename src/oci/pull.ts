/**
 * Pulling an `oci:` module to a local file: resolve the reference (a tag at every pull, a digest
 * once), download the layer unless it is stored, and fall back on what was pulled before when
 * the registry cannot be reached or `--offline` is asked for, saying so.
 * @module
 */

import type { OciReference } from "./reference.ts";
import { RegistryClient, RegistryError } from "./registry.ts";
import type { OciStore } from "./store.ts";

/** How modules are pulled. */
export interface PullOptions {
  store: OciStore;
  client: RegistryClient;
  /** Use only what is stored; never ask a registry. */
  offline: boolean;
  /** Told when a stored module stands in for one that could not be pulled. */
  warn: (message: string) => void;
}

/** A module pulled (or found stored): its file and its layer's digest. */
export interface PulledModule {
  path: string;
  digest: string;
  /**
   * How it was found: `pulled` (downloaded now), `stored` (the registry was asked, the module
   * was in the module cache), `cached` (no registry asked: a stored digest reference, or
   * offline), `fallback` (the registry could not be reached; what was pulled before).
   */
  how: "pulled" | "stored" | "cached" | "fallback";
}

/** The local file of the module `ref` names; throws a {@link RegistryError} naming why not. */
export async function pullModule(ref: OciReference, options: PullOptions): Promise<PulledModule> {
  const { store, client } = options;
  const stored = async () => {
    const remembered = await store.recall(ref.canonical);
    if (!remembered || !await store.hasBlob(remembered.layerDigest)) return undefined;
    return remembered;
  };
  // A digest reference names the same bytes forever: once stored, no registry is asked.
  if (ref.digest || options.offline) {
    const found = await stored();
    if (found) {
      return {
        path: store.blobPath(found.layerDigest),
        digest: found.layerDigest,
        how: "cached",
      };
    }
    if (options.offline) {
      throw new RegistryError(
        "not found",
        `${ref.canonical}: not in the module cache, and --offline forbids pulling it`,
      );
    }
  }
  try {
    const resolved = await client.resolve(ref);
    const stored = await store.hasBlob(resolved.layerDigest);
    if (!stored) {
      const bytes = await client.blob(ref, resolved.layerDigest, resolved.layerSize);
      await store.putBlob(resolved.layerDigest, bytes);
    }
    await store.remember(ref.canonical, resolved);
    return {
      path: store.blobPath(resolved.layerDigest),
      digest: resolved.layerDigest,
      how: stored ? "stored" : "pulled",
    };
  } catch (error) {
    // Only when the registry could not answer: a 404 or a refusal is its answer.
    const transient = error instanceof RegistryError &&
      (error.failure === "unreachable" || error.failure === "server");
    const found = transient && await stored();
    if (!found) throw error;
    options.warn(
      `${(error as Error).message}; serving ${ref.canonical} as pulled at ${found.pulledAt} ` +
        `(${found.layerDigest}) from the module cache`,
    );
    return { path: store.blobPath(found.layerDigest), digest: found.layerDigest, how: "fallback" };
  }
}
