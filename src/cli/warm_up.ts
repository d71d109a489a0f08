/**
 * Warming the runtime's own caches for an image build (`--load-only`): Deno compiles the
 * JavaScript that serves HTTP the first time a server answers, and keeps that code in its
 * DENO_DIR. Answering one request here, at build time, lets an image that ships the DENO_DIR
 * start its first real server without compiling it again (measured: test/bench/HISTORY.md).
 * @module
 */

/** Serves one request on a loopback port, reads the answer, and stops. */
export async function warmUpServing(): Promise<void> {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request) =>
      new Response(await request.text(), { headers: { "content-type": "text/plain" } }),
  );
  try {
    const response = await fetch(`http://127.0.0.1:${server.addr.port}/`, {
      method: "POST",
      body: "warm",
    });
    await response.text();
  } finally {
    await server.shutdown();
  }
}
