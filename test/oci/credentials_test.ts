import { assertEquals, assertThrows } from "../_assert.ts";
import { credentialsFor, dockerConfigFile } from "../../src/oci/credentials.ts";

Deno.test("docker config: credentials from auth (base64) or username/password, by host", () => {
  const config = JSON.stringify({
    auths: {
      "reg.example:5000": { auth: btoa("alice:pa:ss") },
      "https://other.example": { username: "bob", password: "pw" },
    },
  });
  assertEquals(credentialsFor(config, "reg.example:5000"), {
    username: "alice",
    password: "pa:ss",
  });
  assertEquals(credentialsFor(config, "other.example"), { username: "bob", password: "pw" });
  assertEquals(credentialsFor(config, "nowhere.example"), undefined);
  assertThrows(
    () => credentialsFor(JSON.stringify({ auths: { h: { auth: btoa("nocolon") } } }), "h"),
    Error,
    "not base64 of user:password",
  );
});

Deno.test("docker config: $DOCKER_CONFIG wins over ~/.docker", () => {
  const env = (values: Record<string, string>) => (name: string) => values[name];
  assertEquals(dockerConfigFile(env({ DOCKER_CONFIG: "/d", HOME: "/h" })), "/d/config.json");
  assertEquals(dockerConfigFile(env({ HOME: "/h" })), "/h/.docker/config.json");
  assertEquals(dockerConfigFile(env({})), undefined);
});
