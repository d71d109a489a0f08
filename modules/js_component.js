// A wasi:http component in JavaScript: a `fetch` event handler that componentize-js turns into a
// component embedding StarlingMonkey (SpiderMonkey for WASI 0.2). Built, not committed (~13 MB):
// `deno task build-js-component` writes modules/js_component.wasm.
//
//   GET  /...          "Hello from JavaScript" and the request's method and path
//   POST /...          the request body echoed back
//   GET  ...?count     a global counter, incremented: always 1 with fresh state per request
//   GET  ...?loop      loops forever before answering (hostile, for tests)

let counter = 0;

addEventListener("fetch", (event) => event.respondWith(answer(event.request)));

async function answer(request) {
  const url = new URL(request.url);
  if (url.searchParams.has("count")) return new Response(`${++counter}\n`);
  if (url.searchParams.has("loop")) { for (;;); }
  if (request.method === "POST") {
    return new Response(await request.arrayBuffer(), {
      headers: { "content-type": "application/octet-stream" },
    });
  }
  return new Response(`Hello from JavaScript\n${request.method} ${url.pathname}${url.search}\n`, {
    headers: { "content-type": "text/plain" },
  });
}
