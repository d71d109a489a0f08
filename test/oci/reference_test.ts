import { assertEquals, assertThrows } from "../_assert.ts";
import { OciReferenceError, parseOciReference, registryBase } from "../../src/oci/reference.ts";

Deno.test("oci reference: host, port, repository, tag and digest are read as WAGI reads them", () => {
  const digest = `sha256:${"a".repeat(64)}`;
  assertEquals(parseOciReference("oci:localhost:5000/wagi/hello:1.0"), {
    registry: "localhost:5000",
    repository: "wagi/hello",
    tag: "1.0",
    digest: undefined,
    canonical: "localhost:5000/wagi/hello:1.0",
  });
  assertEquals(parseOciReference(`oci://ghcr.io/o/r@${digest}`).digest, digest);
  assertEquals(parseOciReference(`oci://ghcr.io/o/r@${digest}`).tag, undefined);
  // No tag, no digest: latest. No registry: Docker Hub, library/ for a single name.
  assertEquals(parseOciReference("oci:ghcr.io/o/r").tag, "latest");
  assertEquals(parseOciReference("oci:hello").canonical, "docker.io/library/hello:latest");
  assertEquals(parseOciReference("oci:me/hello:2").canonical, "docker.io/me/hello:2");
});

Deno.test("oci reference: a malformed reference names the part that is wrong", () => {
  for (
    const [text, part] of [
      ["oci:", "empty"],
      ["oci:ghcr.io/Upper/x:1", "'Upper' is not a valid name component"],
      ["oci:ghcr.io/x/y:bad/tag", "not a valid name component"],
      ["oci:ghcr.io/x@sha256:123", "digest 'sha256:123'"],
      ["oci:ghcr.io/x:-tag", "tag '-tag'"],
    ]
  ) {
    assertThrows(() => parseOciReference(text), OciReferenceError, part);
  }
});

Deno.test("oci reference: plain HTTP only for loopback and --insecure-registry registries", () => {
  assertEquals(registryBase("localhost:5000"), "http://localhost:5000");
  assertEquals(registryBase("127.0.0.1:41234"), "http://127.0.0.1:41234");
  assertEquals(registryBase("ghcr.io"), "https://ghcr.io");
  assertEquals(registryBase("docker.io"), "https://registry-1.docker.io");
  assertEquals(registryBase("reg.lan:5000", ["reg.lan:5000"]), "http://reg.lan:5000");
});
