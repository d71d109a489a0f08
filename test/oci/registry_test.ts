/**
 * The registry client against a real registry (docker-registry on a loopback port): push, pull,
 * basic auth, and what a registry can get wrong.
 * @module
 */

import { assertEquals, assertOk, assertRejects } from "../_assert.ts";
import { fixture } from "../_fixtures.ts";
import {
  NO_REGISTRY,
  NO_TOKEN_AUTH,
  type Registry,
  REGISTRY_USER,
  startRegistry,
} from "../_registry.ts";
import { parseOciReference } from "../../src/oci/reference.ts";
import { RegistryClient, RegistryError, WASM_LAYER } from "../../src/oci/registry.ts";
import { sha256Hex } from "../../src/digest.ts";
import { freePort } from "../_net.ts";

const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, ignore: NO_REGISTRY !== undefined, fn });
if (NO_REGISTRY) console.warn(`registry tests skipped: ${NO_REGISTRY}`);

async function withRegistry(
  options: { auth?: "basic" | "token" },
  fn: (registry: Registry) => Promise<void>,
): Promise<void> {
  const registry = await startRegistry(options);
  try {
    await fn(registry);
  } finally {
    await registry.stop();
  }
}

test("registry: a pushed module resolves to its wasm layer and downloads byte for byte", () =>
  withRegistry({}, async (registry) => {
    const bytes = await Deno.readFile(fixture("exits.wasm"));
    const client = new RegistryClient();
    const ref = parseOciReference(`oci:${registry.host}/wagi/exits:1`);
    const pushed = await client.push(ref, bytes, "exits.wasm");
    const resolved = await client.resolve(ref);
    assertEquals(resolved.manifestDigest, pushed);
    assertEquals(resolved.layerDigest, `sha256:${await sha256Hex(bytes)}`);
    assertEquals(resolved.layerSize, bytes.length);
    const pulled = await client.blob(ref, resolved.layerDigest, resolved.layerSize);
    assertEquals(pulled, bytes);
    // Pinned by digest: the same manifest.
    const pinned = parseOciReference(`oci:${registry.host}/wagi/exits@${pushed}`);
    assertEquals((await client.resolve(pinned)).layerDigest, resolved.layerDigest);
  }));

test("registry: a missing tag or repository is 'not found', naming the reference", () =>
  withRegistry({}, async (registry) => {
    const client = new RegistryClient();
    await assertRejects(
      () => client.resolve(parseOciReference(`oci:${registry.host}/nothing/here:1`)),
      RegistryError,
      `${registry.host}/nothing/here:1: manifest '1': not found`,
    );
    const digest = `sha256:${"0".repeat(64)}`;
    await assertRejects(
      () => client.resolve(parseOciReference(`oci:${registry.host}/nothing/here@${digest}`)),
      RegistryError,
      "not found",
    );
  }));

test("registry: a manifest without a wasm layer is refused, listing the layers it has", () =>
  withRegistry({}, async (registry) => {
    // An image like any other, pushed with the API itself.
    const base = `http://${registry.host}/v2/other/image`;
    const upload = async (bytes: Uint8Array<ArrayBuffer>) => {
      const digest = `sha256:${await sha256Hex(bytes)}`;
      const started = await fetch(`${base}/blobs/uploads/`, { method: "POST" });
      await started.body?.cancel();
      const url = new URL(started.headers.get("location")!, `http://${registry.host}/`);
      url.searchParams.set("digest", digest);
      const put = await fetch(url, { method: "PUT", body: bytes });
      await put.body?.cancel();
      assertEquals(put.status, 201);
      return { digest, size: bytes.length };
    };
    const config = await upload(new TextEncoder().encode("{}"));
    const layer = await upload(new TextEncoder().encode("not a tarball"));
    const manifest = await fetch(`${base}/manifests/v1`, {
      method: "PUT",
      headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
      body: JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer }],
      }),
    });
    await manifest.body?.cancel();
    assertEquals(manifest.status, 201);
    await assertRejects(
      () => new RegistryClient().resolve(parseOciReference(`oci:${registry.host}/other/image:v1`)),
      RegistryError,
      `no layer of media type ${WASM_LAYER} (its layers: application/vnd.oci.image.layer.v1.tar)`,
    );
  }));

test("registry: a blob the registry serves altered is refused (digest mismatch)", () =>
  withRegistry({}, async (registry) => {
    const bytes = await Deno.readFile(fixture("exits.wasm"));
    const client = new RegistryClient();
    const ref = parseOciReference(`oci:${registry.host}/wagi/exits:1`);
    await client.push(ref, bytes);
    const resolved = await client.resolve(ref);
    // Damage the blob where the registry keeps it.
    const hex = resolved.layerDigest.slice("sha256:".length);
    const file = `${registry.storage}/docker/registry/v2/blobs/sha256/${
      hex.slice(0, 2)
    }/${hex}/data`;
    const damaged = await Deno.readFile(file);
    damaged[damaged.length - 1] ^= 0xff;
    await Deno.writeFile(file, damaged);
    await assertRejects(
      () => client.blob(ref, resolved.layerDigest, resolved.layerSize),
      RegistryError,
      `digest mismatch: blob ${resolved.layerDigest}`,
    );
  }));

test("registry: basic auth — refused without credentials, refused with wrong ones, served with right ones", () =>
  withRegistry({ auth: "basic" }, async (registry) => {
    const bytes = await Deno.readFile(fixture("exits.wasm"));
    const ref = parseOciReference(`oci:${registry.host}/private/exits:1`);
    const anonymous = new RegistryClient();
    await assertRejects(
      () => anonymous.push(ref, bytes),
      RegistryError,
      `the Docker config file has none for ${registry.host}`,
    );
    const wrong = new RegistryClient({
      credentials: () => Promise.resolve({ username: "wagi", password: "wrong" }),
    });
    await assertRejects(() => wrong.resolve(ref), RegistryError, "access refused to user 'wagi'");
    const right = new RegistryClient({ credentials: () => Promise.resolve(REGISTRY_USER) });
    await right.push(ref, bytes);
    const resolved = await right.resolve(ref);
    assertEquals(await right.blob(ref, resolved.layerDigest, resolved.layerSize), bytes);
    await assertRejects(() => anonymous.resolve(ref), RegistryError, "user name and password");
  }));

test("registry: an address nothing listens on is 'unreachable', naming it", async () => {
  const port = freePort();
  const error = await new RegistryClient()
    .resolve(parseOciReference(`oci:127.0.0.1:${port}/x/y:1`)).catch((e) => e);
  assertOk(error instanceof RegistryError);
  assertEquals(error.failure, "unreachable");
  assertOk(error.message.includes(`cannot reach http://127.0.0.1:${port}`), error.message);
});

Deno.test({
  name:
    "registry: token auth — an anonymous token pulls, a user's token pushes, a wrong user is refused",
  ignore: NO_TOKEN_AUTH !== undefined,
  fn: () =>
    withRegistry({ auth: "token" }, async (registry) => {
      const bytes = await Deno.readFile(fixture("exits.wasm"));
      const ref = parseOciReference(`oci:${registry.host}/team/exits:1`);
      const anonymous = new RegistryClient();
      // An anonymous token may not push.
      await assertRejects(() => anonymous.push(ref, bytes), RegistryError, "access refused");
      const user = new RegistryClient({ credentials: () => Promise.resolve(REGISTRY_USER) });
      await user.push(ref, bytes);
      // Anonymous pull: the token flow with no credentials, the token kept for the next call.
      const asked = registry.tokenRequests.length;
      const resolved = await anonymous.resolve(ref);
      assertEquals(await anonymous.blob(ref, resolved.layerDigest, resolved.layerSize), bytes);
      assertEquals(registry.tokenRequests.slice(asked), [
        { scope: "repository:team/exits:pull", user: undefined },
      ]);
      const wrong = new RegistryClient({
        credentials: () => Promise.resolve({ username: "mallory", password: "x" }),
      });
      await assertRejects(
        () => wrong.resolve(ref),
        RegistryError,
        "the token endpoint http://127.0.0.1:",
      );
    }),
});

Deno.test("registry: a hostile registry's endless answers are cut off, not read to the end", async () => {
  const port = freePort();
  let served = 0;
  const endless = (status: number, contentType: string) =>
    new Response(
      new ReadableStream({
        pull(controller) {
          served += 64 * 1024;
          controller.enqueue(new Uint8Array(64 * 1024).fill(0x7b));
        },
      }),
      { status, headers: { "content-type": contentType } },
    );
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, (request) => {
    const path = new URL(request.url).pathname;
    if (path.includes("/manifests/steal")) {
      return new Response(null, {
        status: 401,
        headers: { "www-authenticate": 'Bearer realm="http://attacker.example/token"' },
      });
    }
    if (path.includes("/manifests/endless-error")) return endless(404, "application/json");
    if (path.includes("/manifests/")) {
      return endless(200, "application/vnd.oci.image.manifest.v1+json");
    }
    return endless(200, "application/octet-stream");
  });
  try {
    const client = new RegistryClient();
    const ref = (tag: string) => parseOciReference(`oci:127.0.0.1:${port}/evil/module:${tag}`);
    await assertRejects(() => client.resolve(ref("endless-error")), RegistryError, "not found");
    await assertRejects(() => client.resolve(ref("big")), RegistryError, "larger than 4 MiB");
    await assertRejects(
      () => client.blob(ref("x"), `sha256:${"0".repeat(64)}`, 1000),
      RegistryError,
      "arrived as more than 1000 bytes",
    );
    await assertRejects(
      () => client.blob(ref("x"), `sha256:${"0".repeat(64)}`, 1024 ** 4),
      RegistryError,
      "over the",
    );
    assertOk(served < 64 * 1024 * 1024, `read ${served} bytes of endless answers`);
    // Credentials are not sent in clear to a token endpoint elsewhere.
    const withCredentials = new RegistryClient({
      credentials: () => Promise.resolve(REGISTRY_USER),
    });
    await assertRejects(
      () => withCredentials.resolve(ref("steal")),
      RegistryError,
      "token endpoint that is not HTTPS (http://attacker.example)",
    );
  } finally {
    await server.shutdown();
  }
});
