import { assertEquals, assertIncludes } from "../_assert.ts";
import { CgiOutputParser, MISSING_CONTENT_TYPE } from "../../src/cgi/response.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

/** One parser for the whole file, as one app has: what it remembers must not change answers. */
const parser = new CgiOutputParser();

async function parse(text: string | Uint8Array<ArrayBuffer>) {
  const { response, warnings } = parser.parse(typeof text === "string" ? bytes(text) : text);
  return { response, warnings, body: new Uint8Array(await response.arrayBuffer()) };
}

const decode = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("headers, a blank line, then the body: content type and 200", async () => {
  const { response, body } = await parse("Content-Type: text/plain\n\nhello\n");
  assertEquals(response.status, 200);
  assertEquals(response.headers.get("content-type"), "text/plain");
  assertEquals(decode(body), "hello\n");
});

Deno.test("CRLF header lines work, and CRs in the body are kept", async () => {
  const { response, body } = await parse("Content-Type: text/plain\r\nX-A: 1\r\n\r\na\r\nb\r\n");
  assertEquals(response.headers.get("x-a"), "1");
  assertEquals(decode(body), "a\r\nb\r\n");
});

Deno.test("no blank line: the whole output is the body, without headers → 500", async () => {
  const { response, body } = await parse("Content-Type: text/plain\nno blank line");
  assertEquals(response.status, 500);
  assertEquals(decode(body), MISSING_CONTENT_TYPE);
});

Deno.test("no Content-Type, Location or Status → 500 with WAGI's message", async () => {
  const { response, body } = await parse("X-Only: 1\n\nbody");
  assertEquals(response.status, 500);
  assertEquals(decode(body), "Exactly one of 'location' or 'content-type' must be specified");
});

Deno.test("Status sets the status from its first number; alone it is enough", async () => {
  const { response, body } = await parse("Status: 404 Not Found\n\ngone");
  assertEquals(response.status, 404);
  assertEquals(decode(body), "gone");
});

Deno.test("an unparseable Status → 502", async () => {
  assertEquals((await parse("Status: nope\nContent-Type: text/plain\n\n")).response.status, 502);
  assertEquals((await parse("Status: 99\nContent-Type: text/plain\n\n")).response.status, 502);
});

Deno.test("Location alone → 302; an explicit Status beats it, in either order", async () => {
  const redirect = await parse("Location: /elsewhere\n\n");
  assertEquals(redirect.response.status, 302);
  assertEquals(redirect.response.headers.get("location"), "/elsewhere");
  assertEquals((await parse("Status: 301\nLocation: /x\n\n")).response.status, 301);
  assertEquals((await parse("Location: /x\nStatus: 307\n\n")).response.status, 307);
});

Deno.test("repeated headers are all kept", async () => {
  const { response } = await parse(
    "Content-Type: text/plain\nSet-Cookie: a=1\nSet-Cookie: b=2\n\n",
  );
  assertEquals(response.headers.getSetCookie(), ["a=1", "b=2"]);
});

Deno.test("a header line without ':' is skipped with a warning", async () => {
  const { response, warnings } = await parse("Content-Type: text/plain\nbogus line\n\nok");
  assertEquals(response.status, 200);
  assertEquals(warnings.length, 1);
  assertIncludes(warnings[0], "bogus line");
});

Deno.test("names and values are split at the first ':' and trimmed", async () => {
  const { response } = await parse("Content-Type:  text/plain \nX-Url:  http://a:1/b  \n\n");
  assertEquals(response.headers.get("x-url"), "http://a:1/b");
  assertEquals(response.headers.get("content-type"), "text/plain");
});

Deno.test("an invalid header name → 500 with the reason in the warnings", async () => {
  const { response, warnings } = await parse("Content-Type: text/plain\nBad Name: x\n\n");
  assertEquals(response.status, 500);
  assertIncludes(warnings.join("\n"), "Bad Name");
});

Deno.test("the body is passed on byte for byte, binary included", async () => {
  const payload = new Uint8Array(256).map((_, i) => i);
  const head = bytes("Content-Type: application/octet-stream\n\n");
  const output = new Uint8Array(head.length + payload.length);
  output.set(head);
  output.set(payload, head.length);
  assertEquals((await parse(output)).body, payload);
});

Deno.test("204 answers with no body even if the module wrote one", async () => {
  const { response, body } = await parse("Status: 204\n\nignored");
  assertEquals(response.status, 204);
  assertEquals(body.length, 0);
});

Deno.test("a header block seen before parses the same; a different one is parsed anew", async () => {
  // Remembered heads are found by a hash of their bytes: these two blocks have the same one
  // (FNV-1a), so only comparing the bytes tells them apart. The runner reuses its stdout
  // buffer, so what is remembered must be a copy, not a view of it.
  const output = bytes("Content-Type: text/plain\nX-Run: 0ou9zou500\n\nbody");
  const at = output.indexOf(0x3a, 26) + 2;
  for (const run of ["0ou9zou500", "0ou9zou500", "op7wvk9yyq", "0ou9zou500", "op7wvk9yyq"]) {
    output.set(bytes(run), at);
    const { response, warnings, body } = await parse(output);
    assertEquals([response.headers.get("x-run"), decode(body), warnings], [run, "body", []]);
  }
  for (let i = 0; i < 2; i++) {
    const { warnings } = await parse("Content-Type: text/plain\nno colon\n\n");
    assertEquals(warnings.length, 1);
  }
});

Deno.test("a control character or DEL in a header value is a 500 with the reason, never sent", async () => {
  for (const bad of ["\x01", "\x0b", "\x1b", "\x7f", "\0"]) {
    const { response, warnings } = await parse(`Content-Type: text/plain\nX-Bad: a${bad}b\n\nbody`);
    assertEquals(response.status, 500, JSON.stringify(bad));
    assertIncludes(warnings.join("\n"), "invalid header");
  }
});

Deno.test("UTF-8 in a header value reaches the client byte for byte", async () => {
  // "é" and "à": the second ends in 0xA0, which a plain trim() would cut off.
  const output = new TextEncoder().encode("Content-Type: text/plain\nX-Name: é à\n\nbody");
  const { response } = await parse(output as Uint8Array<ArrayBuffer>);
  assertEquals(response.status, 200);
  const raw = response.headers.get("x-name")!;
  const bytes = Uint8Array.from(raw, (c) => c.charCodeAt(0));
  assertEquals(new TextDecoder().decode(bytes), "é à");
});

Deno.test("a module's Content-Length is not sent: the real length is, and a wrong one is logged", async () => {
  // The header is left to Deno, which sends the length of the body it is given.
  const right = await parse("Content-Type: text/plain\nContent-Length: 4\n\nbody");
  assertEquals([right.response.headers.get("content-length"), right.warnings], [null, []]);
  const wrong = await parse("Content-Type: text/plain\nContent-Length: 100\n\nbody");
  assertEquals(new TextDecoder().decode(wrong.body), "body");
  assertEquals(wrong.response.headers.get("content-length"), null);
  assertIncludes(wrong.warnings.join("\n"), "declared Content-Length 100 but wrote 4 body bytes");
});
