/**
 * The image, built and run for real with podman (runc): its build stage and final stage on a
 * base image assembled from this machine (Deno's binary and its glibc, busybox as the build's
 * shell), since base images cannot be pulled here. Then pushed to a real registry
 * (docker-registry on a loopback port) and pulled back. Skipped, saying why, without podman.
 * @module
 */

import { assertEquals, assertIncludes, assertOk } from "../_assert.ts";
import { ROOT } from "../_fixtures.ts";
import { freePort } from "../_net.ts";
import { tempDir } from "../_temp.ts";

const PODMAN = ["--runtime", "runc"];
const missing = ["podman", "runc", "busybox", "docker-registry", "ldd"].filter((tool) =>
  new Deno.Command("sh", { args: ["-c", `command -v ${tool}`] }).outputSync().code !== 0
);
if (missing.length > 0) {
  console.log(
    `container test skipped: ${missing.join(", ")} not installed ` +
      "(apt-get install podman runc busybox-static docker-registry)",
  );
}

/** Runs a command; returns its stdout, throwing with its stderr when it fails. */
async function run(program: string, args: string[]): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command(program, { args, stdin: "null" })
    .output();
  if (code !== 0) {
    throw new Error(`${program} ${args.join(" ")}: ${new TextDecoder().decode(stderr)}`);
  }
  return new TextDecoder().decode(stdout);
}

/**
 * A base image from this machine: the running Deno binary and the libraries it links, busybox
 * as /bin/sh, a `nonroot` user as distroless has, and the machine's CA bundle (Deno is told to
 * use it too: this machine may reach the npm registry through a proxy with its own CA).
 */
async function assembleBase(tag: string): Promise<void> {
  const root = await tempDir("wagi-base-");
  for (const dir of ["usr/bin", "bin", "lib64", "etc/ssl/certs", "tmp", "home/nonroot"]) {
    await Deno.mkdir(`${root}/${dir}`, { recursive: true });
  }
  await Deno.chmod(`${root}/tmp`, 0o1777);
  const deno = Deno.realPathSync(Deno.execPath());
  await Deno.copyFile(deno, `${root}/usr/bin/deno`);
  await Deno.chmod(`${root}/usr/bin/deno`, 0o755);
  for (const line of (await run("ldd", [deno])).split("\n")) {
    const library = line.match(/(\/\S+) \(0x/)?.[1];
    if (!library) continue;
    const into = `${root}${library.slice(0, library.lastIndexOf("/"))}`;
    await Deno.mkdir(into, { recursive: true });
    await Deno.copyFile(Deno.realPathSync(library), `${root}${library}`);
  }
  const busybox = (await run("sh", ["-c", "command -v busybox"])).trim();
  await Deno.copyFile(busybox, `${root}/bin/busybox`);
  await Deno.chmod(`${root}/bin/busybox`, 0o755);
  await Deno.symlink("busybox", `${root}/bin/sh`);
  await Deno.writeTextFile(
    `${root}/etc/passwd`,
    "root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/bin/sh\n",
  );
  await Deno.writeTextFile(`${root}/etc/group`, "root:x:0:\nnonroot:x:65532:\n");
  await Deno.copyFile(
    "/etc/ssl/certs/ca-certificates.crt",
    `${root}/etc/ssl/certs/ca-certificates.crt`,
  )
    .catch(() => {});
  await run("sh", [
    "-c",
    `tar -C '${root}' -c . | podman import --change 'ENV DENO_TLS_CA_STORE=mozilla,system' - ${tag}`,
  ]);
}

/** Polls `url` until it answers 200 or `ms` pass. */
async function until200(url: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const ok = await fetch(url).then((r) => r.body?.cancel().then(() => r.ok)).catch(() => false);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no 200 from ${url} within ${ms} ms`);
}

Deno.test({
  name:
    "the image builds, serves as non-root, drains on SIGTERM to exit 0, and goes through a registry",
  ignore: missing.length > 0,
  sanitizeResources: false,
  async fn() {
    const id = crypto.randomUUID().slice(0, 8);
    const base = `localhost/wagi-test-base:${id}`;
    const image = `localhost/wagi-deno:test-${id}`;
    const containers: string[] = [];
    let registry: Deno.ChildProcess | undefined;
    try {
      await assembleBase(base);
      await run("podman", [
        ...PODMAN,
        "build",
        // No cache of intermediate layers: the build stage's image goes with the build.
        "--layers=false",
        "--network",
        "host",
        "--build-arg",
        `BUILD_IMAGE=${base}`,
        "--build-arg",
        `RUN_IMAGE=${base}`,
        "-t",
        image,
        ROOT,
      ]);
      const size = Number(await run("podman", ["image", "inspect", "-f", "{{.Size}}", image]));
      console.log(`image ${image}: ${(size / 1024 / 1024).toFixed(0)} MiB`);

      // A slow upstream, so that a request is in flight when the container is told to stop.
      const upstreamPort = freePort();
      const upstream = Deno.serve(
        { hostname: "127.0.0.1", port: upstreamPort, onListen() {} },
        async () => {
          await new Promise((resolve) => setTimeout(resolve, 1500));
          return new Response("slow answer\n");
        },
      );
      try {
        const port = freePort();
        const started = performance.now();
        const container = (await run("podman", [
          ...PODMAN,
          "run",
          "-d",
          "--network",
          "host",
          "--ulimit",
          "nofile=1024:1024",
          "--ulimit",
          "nproc=1024:1024",
          "-e",
          `PORT=${port}`,
          image,
        ])).trim();
        containers.push(container);
        const url = `http://127.0.0.1:${port}`;
        await until200(`${url}/`, 30_000);
        console.log(
          `podman run to the first 200 on /: ${(performance.now() - started).toFixed(0)} ms`,
        );
        assertEquals(await (await fetch(`${url}/healthz`)).text(), "OK");
        assertEquals(await (await fetch(`${url}/`)).text(), "Oh hi world\n");
        assertEquals(await (await fetch(`${url}/hello`)).text(), "hello world\n");

        // The final stage can still compile WebAssembly text: load every module on an empty
        // module cache (the image's own is filled at build, so nothing else needs wabt).
        const fresh = await new Deno.Command("podman", {
          args: [
            ...PODMAN,
            "run",
            "--rm",
            "--network",
            "host",
            ...["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"],
            image,
            ...[
              "deno",
              "run",
              "--cached-only",
              "--no-lock",
              "--allow-all",
              "dist/main.js",
              "serve",
            ],
            ...["-c", "modules/modules.toml", "--module-cache", "/tmp/fresh", "--load-only"],
          ],
        }).output();
        const freshLog = new TextDecoder().decode(fresh.stderr);
        assertEquals(fresh.code, 0, freshLog);
        assertOk(/0 derived modules read back, [1-9]\d* made/.test(freshLog), freshLog);

        // Not root: the server's process, seen from the host.
        const pid = (await run("podman", ["inspect", "-f", "{{.State.Pid}}", container])).trim();
        const uid = (await Deno.readTextFile(`/proc/${pid}/status`)).match(/^Uid:\s+(\d+)/m)?.[1];
        assertEquals(uid, "65532", "the server runs as nonroot");

        // SIGTERM with a request in flight: it completes, and the server (PID 1) exits 0.
        const inFlight = fetch(
          `${url}/http-example?url=http://127.0.0.1:${upstreamPort}/`,
        ).then(async (r) => [r.status, await r.text()] as const);
        await new Promise((resolve) => setTimeout(resolve, 500));
        await run("podman", ["kill", "--signal", "TERM", container]);
        const [status, body] = await inFlight;
        // The module reports what its upstream answered: "slow answer\n" is 12 bytes.
        assertEquals(status, 200);
        assertIncludes(body, "status: 200\nbody length: 12\n");
        const exit = (await run("podman", ["wait", container])).trim();
        assertEquals(exit, "0", "the container exited 0 after draining");
      } finally {
        await upstream.shutdown();
      }

      // A real registry on a loopback port: push, forget the image, pull it back.
      const registryPort = freePort();
      const storage = await tempDir("wagi-registry-");
      await Deno.writeTextFile(
        `${storage}/config.yml`,
        `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${storage}/data\n` +
          `http:\n  addr: 127.0.0.1:${registryPort}\n`,
      );
      registry = new Deno.Command("docker-registry", {
        args: ["serve", `${storage}/config.yml`],
        stdout: "null",
        stderr: "null",
      }).spawn();
      await until200(`http://127.0.0.1:${registryPort}/v2/`, 10_000);
      const remote = `127.0.0.1:${registryPort}/wagi-deno:test-${id}`;
      await run("podman", ["tag", image, remote]);
      await run("podman", ["push", "--tls-verify=false", remote]);
      await run("podman", ["rmi", remote]);
      await run("podman", ["pull", "--tls-verify=false", remote]);
      const pulled = await run("podman", ["image", "inspect", "-f", "{{.Id}}", remote]);
      const built = await run("podman", ["image", "inspect", "-f", "{{.Id}}", image]);
      assertOk(pulled.trim().length > 0);
      assertEquals(pulled.trim(), built.trim(), "the image pulled back is the one built");
      await run("podman", ["rmi", remote]);
    } finally {
      for (const container of containers) {
        await run("podman", ["rm", "-f", container]).catch(() => {});
      }
      await run("podman", ["rmi", "-f", image, base]).catch(() => {});
      if (registry) {
        registry.kill("SIGTERM");
        await registry.status;
      }
    }
  },
});
