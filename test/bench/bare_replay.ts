/**
 * A second baseline for the benchmarks: a bare `Deno.serve` answering each path with the very
 * response wagi-deno gave it (status, headers, body, recorded by the bench), listening on $PORT.
 * Against it, a route's ratio is the server's own cost, not the cost of sending more bytes.
 *
 * Run: deno run --allow-all test/bench/bare_replay.ts RECORDED.json
 * @module
 */

/** One recorded response, by the path and query it answers. */
export interface Recorded {
  target: string;
  status: number;
  headers: [string, string][];
  /** The body, base64. */
  body: string;
}

if (import.meta.main) {
  const recorded: Recorded[] = JSON.parse(await Deno.readTextFile(Deno.args[0]));
  const answers = new Map(recorded.map((r) => {
    const body = Uint8Array.from(atob(r.body), (c) => c.charCodeAt(0));
    // A text body goes as a string, as the server sends small text (Deno's cheaper path).
    const text = /^text\/|json/.test(new Headers(r.headers).get("content-type") ?? "")
      ? new TextDecoder().decode(body)
      : body;
    const init = { status: r.status, headers: r.headers };
    return [r.target, { init, body: text }] as const;
  }));
  const port = Number(Deno.env.get("PORT") ?? 8000);
  Deno.serve({ hostname: "0.0.0.0", port, onListen() {} }, async (request) => {
    // The path and query, without parsing the whole URL (kept as cheap as the hello).
    const url = request.url;
    const answer = answers.get(url.slice(url.indexOf("/", url.indexOf("//") + 2)));
    if (!answer) return new Response("Not Found\n", { status: 404 });
    // The same work for a request body: it is read to its end.
    if (request.body) await request.arrayBuffer();
    return new Response(answer.body, answer.init);
  });
}
