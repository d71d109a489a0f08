import { assertEquals, assertIncludes } from "../_assert.ts";
import { startServer } from "./_server.ts";
import { tempDir } from "../_temp.ts";

/** Makes a self-signed certificate for 127.0.0.1 with openssl; undefined when it is missing. */
async function selfSigned(): Promise<{ cert: string; key: string } | undefined> {
  const dir = await tempDir("wagi-tls-");
  try {
    const { success } = await new Deno.Command("openssl", {
      args: [
        ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"],
        ...["-keyout", `${dir}/key.pem`, "-out", `${dir}/cert.pem`, "-subj", "/CN=127.0.0.1"],
        ...["-addext", "subjectAltName=IP:127.0.0.1"],
        ...["-addext", "basicConstraints=critical,CA:FALSE"],
      ],
      stdout: "null",
      stderr: "null",
    }).output();
    return success ? { cert: `${dir}/cert.pem`, key: `${dir}/key.pem` } : undefined;
  } catch {
    return undefined;
  }
}

const tls = await selfSigned();

Deno.test({
  name: "--tls-cert and --tls-key serve HTTPS and X_FULL_URL says https",
  ignore: tls === undefined,
  async fn() {
    const server = await startServer([
      ...["-c", "modules/modules.toml", "--tls-cert", tls!.cert, "--tls-key", tls!.key],
    ]);
    const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(tls!.cert)] });
    try {
      assertEquals(server.url.startsWith("https://127.0.0.1:"), true);
      const response = await fetch(`${server.url}/env/x`, { client });
      const body = await response.text();
      assertEquals(response.status, 200);
      assertIncludes(body, `X_FULL_URL = ${server.url}/env/x\n`);
    } finally {
      client.close();
      await server.stop();
    }
  },
});
