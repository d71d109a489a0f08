/**
 * The baseline of the benchmarks: a bare `Deno.serve` answering `Oh hi world`, listening on
 * $PORT like the server.
 * @module
 */

const port = Number(Deno.env.get("PORT") ?? 8000);
Deno.serve({ hostname: "0.0.0.0", port, onListen() {} }, () => new Response("Oh hi world\n"));
