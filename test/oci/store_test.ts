import { assertEquals } from "../_assert.ts";
import { OciStore } from "../../src/oci/store.ts";
import { sha256Hex } from "../../src/digest.ts";
import { tempDir } from "../_temp.ts";

async function blob(store: OciStore, text: string): Promise<string> {
  const bytes = new TextEncoder().encode(text);
  const digest = `sha256:${await sha256Hex(bytes)}`;
  await store.putBlob(digest, bytes);
  return digest;
}

Deno.test("oci store: a blob no reference names is removed once old enough; named and recent ones stay", async () => {
  const store = new OciStore(await tempDir("wagi-oci-store-"));
  const [old, current, recent] = [
    await blob(store, "old"),
    await blob(store, "current"),
    await blob(store, "recent"),
  ];
  // The tag moved from `old` to `current`; `recent` was just pulled by someone else.
  await store.remember("reg.example/a:1", {
    manifestDigest: current,
    layerDigest: current,
    layerSize: 7,
  });
  const hourAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
  for (const digest of [old, current]) await Deno.utime(store.blobPath(digest), hourAgo, hourAgo);
  assertEquals(await store.prune(), 1);
  assertEquals(
    await Promise.all([old, current, recent].map((d) => store.hasBlob(d))),
    [false, true, true],
  );
  assertEquals((await store.recall("reg.example/a:1"))?.layerDigest, current);
});
