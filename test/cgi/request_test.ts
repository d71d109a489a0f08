import { assertEquals } from "../_assert.ts";
import {
  authorityOf,
  cgiArgv,
  type CgiDefaults,
  CgiEnvironments,
  type CgiRequest,
  parseHostPort,
  percentDecode,
  rawTarget,
} from "../../src/cgi/request.ts";

function request(overrides: Partial<CgiRequest> & { url?: string } = {}): CgiRequest {
  const { url = "http://x/foo/a%20b?x=1&y=%41", ...rest } = overrides;
  return {
    method: "GET",
    target: rawTarget(url),
    headers: new Headers(),
    remoteAddr: "127.0.0.1",
    bodyLength: 0,
    scheme: "http",
    ...rest,
  };
}

const route = { scriptName: "/foo", rawPathInfo: "/a%20b", matchedRoute: "/foo/..." };
const defaults: CgiDefaults = {
  hostname: parseHostPort("localhost:3000"),
  globalEnv: [],
  moduleEnv: {},
};

function env(req: CgiRequest, defs = defaults, r = route): Record<string, string> {
  return Object.fromEntries(new CgiEnvironments().build(req, r, defs));
}

Deno.test("rawTarget keeps the path and query raw and tells '?' with an empty query apart", () => {
  assertEquals(rawTarget("http://h:1/a%2Fb?q=%20+1"), { path: "/a%2Fb", query: "q=%20+1" });
  assertEquals(rawTarget("http://h/a"), { path: "/a", query: undefined });
  assertEquals(rawTarget("http://h/a?"), { path: "/a", query: "" });
  assertEquals(rawTarget("http://[::1]:80/"), { path: "/", query: undefined });
});

Deno.test("the CGI variables of docs/wagi.md for a prefix route", () => {
  const vars = env(request({
    method: "POST",
    bodyLength: 5,
    headers: new Headers({ "content-type": "text/plain", host: "example.com:8080" }),
  }));
  assertEquals(vars.AUTH_TYPE, "");
  assertEquals(vars.REMOTE_USER, "");
  assertEquals(vars.CONTENT_LENGTH, "5");
  assertEquals(vars.CONTENT_TYPE, "text/plain");
  assertEquals(vars.GATEWAY_INTERFACE, "CGI/1.1");
  assertEquals(vars.QUERY_STRING, "x=1&y=%41");
  assertEquals(vars.REMOTE_ADDR, "127.0.0.1");
  assertEquals(vars.REMOTE_HOST, "127.0.0.1");
  assertEquals(vars.REQUEST_METHOD, "POST");
  assertEquals(vars.SCRIPT_NAME, "/foo");
  assertEquals(vars.PATH_INFO, "/a b");
  assertEquals(vars.PATH_TRANSLATED, "/a b");
  assertEquals(vars.X_RAW_PATH_INFO, "/a%20b");
  assertEquals(vars.X_MATCHED_ROUTE, "/foo/...");
  assertEquals(vars.X_FULL_URL, "http://example.com:8080/foo/a%20b?x=1&y=%41");
  assertEquals(vars.SERVER_NAME, "example.com");
  assertEquals(vars.SERVER_PORT, "8080");
  assertEquals(vars.SERVER_PROTOCOL, "HTTP/1.1");
  assertEquals(vars.SERVER_SOFTWARE, "WAGI/1");
  assertEquals(vars.HTTP_CONTENT_TYPE, "text/plain");
  assertEquals(vars.HTTP_HOST, "example.com:8080");
});

Deno.test("CONTENT_LENGTH is 0 and QUERY_STRING empty when there is no body or query", () => {
  const vars = env(request({ url: "http://x/foo" }));
  assertEquals(vars.CONTENT_LENGTH, "0");
  assertEquals(vars.QUERY_STRING, "");
  assertEquals(vars.CONTENT_TYPE, "");
});

Deno.test("SERVER_NAME/PORT fall back part by part from Host to --hostname", () => {
  assertEquals(env(request()).SERVER_NAME, "localhost");
  assertEquals(env(request()).SERVER_PORT, "3000");
  const hostOnly = env(request({ headers: new Headers({ host: "foo" }) }));
  assertEquals([hostOnly.SERVER_NAME, hostOnly.SERVER_PORT], ["foo", "3000"]);
  const custom = { ...defaults, hostname: parseHostPort("wagi.example:9000") };
  const fromFlag = env(request(), custom);
  assertEquals([fromFlag.SERVER_NAME, fromFlag.SERVER_PORT], ["wagi.example", "9000"]);
  assertEquals(fromFlag.X_FULL_URL, "http://wagi.example:9000/foo/a%20b?x=1&y=%41");
});

Deno.test("HTTP/2 over TLS: :authority stands in for Host, SERVER_PROTOCOL says HTTP/2", () => {
  const h2 = new Request("https://wagi.example:8443/foo/a%20b");
  const info = authorityOf(h2, "https");
  assertEquals(info, { authority: "wagi.example:8443", protocol: "HTTP/2" });
  const vars = env(request({ ...info, scheme: "https" }));
  assertEquals([vars.SERVER_NAME, vars.SERVER_PORT], ["wagi.example", "8443"]);
  assertEquals(vars.SERVER_PROTOCOL, "HTTP/2");
  assertEquals(vars.X_FULL_URL.startsWith("https://wagi.example:8443/"), true);
  const plain = new Request("http://localhost/x");
  assertEquals(authorityOf(plain, "http"), { authority: null, protocol: "HTTP/1.1" });
});

Deno.test("IPv6 Host headers keep their brackets and split off the port", () => {
  const vars = env(request({ headers: new Headers({ host: "[::1]:3001" }) }));
  assertEquals([vars.SERVER_NAME, vars.SERVER_PORT], ["[::1]", "3001"]);
  assertEquals(vars.X_FULL_URL.startsWith("http://[::1]:3001/"), true);
  assertEquals(parseHostPort("[fe80::1]"), { name: "[fe80::1]", port: undefined });
  assertEquals(parseHostPort("::1"), { name: "::1" });
});

Deno.test("headers become HTTP_* except Authorization and Connection; Basic sets REMOTE_USER", () => {
  const vars = env(request({
    headers: new Headers({
      "x-custom-thing": "v",
      authorization: `Basic ${btoa("alice:secret")}`,
      connection: "keep-alive",
    }),
  }));
  assertEquals(vars.HTTP_X_CUSTOM_THING, "v");
  assertEquals("HTTP_AUTHORIZATION" in vars, false);
  assertEquals("HTTP_CONNECTION" in vars, false);
  assertEquals([vars.AUTH_TYPE, vars.REMOTE_USER], ["Basic", "alice"]);
});

Deno.test("env build order: files, -e, module environment, CGI variables, then HTTP_*", () => {
  const vars = env(request({ headers: new Headers({ "x-a": "from header" }) }), {
    hostname: {},
    globalEnv: [["A", "global"], ["B", "global"], ["SERVER_SOFTWARE", "mine"], [
      "HTTP_X_A",
      "global",
    ]],
    moduleEnv: { B: "module", C: "module" },
  });
  assertEquals(vars.A, "global");
  assertEquals(vars.B, "module");
  assertEquals(vars.C, "module");
  assertEquals(vars.SERVER_SOFTWARE, "WAGI/1");
  assertEquals(vars.HTTP_X_A, "from header");
});

Deno.test("an exact route has empty path info; X_FULL_URL keeps an empty '?'", () => {
  const vars = env(request({ url: "http://x/foo?" }), defaults, {
    scriptName: "/foo",
    rawPathInfo: "",
    matchedRoute: "/foo",
  });
  assertEquals([vars.PATH_INFO, vars.X_RAW_PATH_INFO], ["", ""]);
  assertEquals(vars.X_FULL_URL, "http://localhost:3000/foo?");
});

Deno.test("PATH_INFO decodes percent escapes as UTF-8 bytes and leaves + alone", () => {
  assertEquals(percentDecode("/a+b%2Bc%C3%A9"), "/a+b+cé");
  assertEquals(percentDecode("/bad%zz%4"), "/bad%zz%4");
});

Deno.test("default argv: raw path, then the query split on & without decoding", () => {
  assertEquals(cgiArgv(rawTarget("http://x/p%20q?a=1&b=%20"), undefined), [
    "/p%20q",
    "a=1",
    "b=%20",
  ]);
  assertEquals(cgiArgv(rawTarget("http://x/p"), undefined), ["/p"]);
  assertEquals(cgiArgv(rawTarget("http://x/p?"), undefined), ["/p", ""]);
});

Deno.test("argv templates substitute ${SCRIPT_NAME} and ${ARGS}, then split on whitespace", () => {
  const target = rawTarget("http://x/run/it?a=1&b=2");
  assertEquals(cgiArgv(target, "${SCRIPT_NAME} --flag ${ARGS}"), [
    "/run/it",
    "--flag",
    "a=1",
    "b=2",
  ]);
  assertEquals(cgiArgv(rawTarget("http://x/p"), "prog  ${ARGS}"), ["prog"]);
});

Deno.test("a header with '_' in its name cannot pass for another one; Proxy never becomes HTTP_PROXY", () => {
  const environments = new CgiEnvironments();
  const dropped: string[] = [];
  environments.onDroppedHeader = (name) => dropped.push(name);
  const vars = Object.fromEntries(environments.build(
    request({
      headers: new Headers({
        "x-forwarded-for": "10.0.0.1",
        "x_forwarded_for": "6.6.6.6",
        "proxy": "http://evil.example",
      }),
    }),
    route,
    defaults,
  ));
  assertEquals(vars.HTTP_X_FORWARDED_FOR, "10.0.0.1");
  assertEquals(vars.HTTP_PROXY, undefined);
  assertEquals(dropped, ["x_forwarded_for"]);
});
