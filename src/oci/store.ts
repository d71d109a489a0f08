/**
 * Pulled modules on disk, under `DIR/oci/`: each blob by its digest (checked against it
 * whenever it is used), and what each reference last resolved to, so that a restart with a
 * digest reference, `--offline`, or a registry that cannot be reached serves what was pulled.
 * @module
 */

import { sha256Hex } from "../digest.ts";
import { replaceFile } from "../paths.ts";
import type { ResolvedModule } from "./registry.ts";

/** What a reference resolved to when it was last pulled. */
export interface RememberedReference extends ResolvedModule {
  reference: string;
  /** When it was pulled (ISO 8601). */
  pulledAt: string;
}

/** Blobs and references kept under `dir`. */
export class OciStore {
  constructor(readonly dir: string) {}

  /** The file the blob `digest` is kept in. */
  blobPath(digest: string): string {
    return `${this.dir}/oci/blobs/sha256/${digest.replace(/^sha256:/, "")}`;
  }

  /** True when the blob `digest` is stored intact; a damaged copy is removed. */
  async hasBlob(digest: string): Promise<boolean> {
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = await Deno.readFile(this.blobPath(digest));
    } catch {
      return false;
    }
    if (`sha256:${await sha256Hex(bytes)}` === digest) return true;
    await Deno.remove(this.blobPath(digest)).catch(() => {});
    return false;
  }

  /** Stores a blob already checked against `digest`. */
  async putBlob(digest: string, bytes: Uint8Array): Promise<void> {
    await replaceFile(this.blobPath(digest), bytes);
  }

  /** Remembers what `reference` (canonical) resolved to. */
  async remember(reference: string, resolved: ResolvedModule): Promise<void> {
    const record: RememberedReference = {
      reference,
      ...resolved,
      pulledAt: new Date().toISOString(),
    };
    await replaceFile(
      await this.#refPath(reference),
      new TextEncoder().encode(JSON.stringify(record) + "\n"),
    );
  }

  /** What `reference` resolved to when it was last pulled, if it was. */
  async recall(reference: string): Promise<RememberedReference | undefined> {
    try {
      const record = JSON.parse(await Deno.readTextFile(await this.#refPath(reference)));
      const valid = record.reference === reference &&
        /^sha256:[a-f0-9]{64}$/.test(record.layerDigest);
      return valid ? record : undefined;
    } catch {
      return undefined;
    }
  }

  async #refPath(reference: string): Promise<string> {
    return `${this.dir}/oci/refs/${await sha256Hex(reference)}.json`;
  }
}
