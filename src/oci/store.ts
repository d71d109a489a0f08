/**
 * Pulled modules on disk, under `DIR/oci/`: each blob by its digest (checked against it
 * whenever it is used), and what each reference last resolved to, so that a restart with a
 * digest reference, `--offline`, or a registry that cannot be reached serves what was pulled.
 * @module
 */

import { sha256Hex } from "../digest.ts";
import { replaceFile } from "../paths.ts";
import type { ResolvedModule } from "./registry.ts";

/** How old an unnamed blob must be before {@link OciStore.prune} removes it. */
export const PRUNE_GRACE_MS = 60 * 60 * 1000;

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

  /**
   * Removes the blobs no remembered reference names any more (a tag that moved leaves its old
   * module behind), unless younger than `graceMs`: another server sharing the cache may have
   * just pulled one and not yet remembered it. Returns how many were removed.
   */
  async prune(graceMs = PRUNE_GRACE_MS): Promise<number> {
    const named = new Set<string>();
    try {
      for await (const entry of Deno.readDir(`${this.dir}/oci/refs`)) {
        if (!entry.name.endsWith(".json")) continue;
        try {
          const record = JSON.parse(await Deno.readTextFile(`${this.dir}/oci/refs/${entry.name}`));
          if (typeof record.layerDigest === "string") named.add(record.layerDigest);
        } catch { /* a damaged record names nothing */ }
      }
    } catch {
      return 0;
    }
    let removed = 0;
    const blobs = `${this.dir}/oci/blobs/sha256`;
    try {
      for await (const entry of Deno.readDir(blobs)) {
        if (!/^[a-f0-9]{64}$/.test(entry.name) || named.has(`sha256:${entry.name}`)) continue;
        const path = `${blobs}/${entry.name}`;
        const age = Date.now() - ((await Deno.stat(path)).mtime?.getTime() ?? Date.now());
        if (age < graceMs) continue;
        await Deno.remove(path);
        removed++;
      }
    } catch { /* nothing to prune */ }
    return removed;
  }

  async #refPath(reference: string): Promise<string> {
    return `${this.dir}/oci/refs/${await sha256Hex(reference)}.json`;
  }
}
