import { assertEquals, assertThrows } from "../_assert.ts";
import {
  joinSubroute,
  matchRoute,
  parseRoute,
  parseRoutesOutput,
} from "../../src/routing/route.ts";
import { RoutingTable } from "../../src/routing/table.ts";

Deno.test("prefix route /foo/... matches /foo, /foo/ and deeper paths but not /foobar", () => {
  const route = parseRoute("/foo/...");
  assertEquals(matchRoute(route, "/foo"), { scriptName: "/foo", rawPathInfo: "" });
  assertEquals(matchRoute(route, "/foo/"), { scriptName: "/foo", rawPathInfo: "/" });
  assertEquals(matchRoute(route, "/foo/x/y"), { scriptName: "/foo", rawPathInfo: "/x/y" });
  assertEquals(matchRoute(route, "/foobar"), undefined);
  assertEquals(matchRoute(route, "/fo"), undefined);
});

Deno.test("/... matches everything with SCRIPT_NAME / and the whole path as path info", () => {
  const route = parseRoute("/...");
  assertEquals(matchRoute(route, "/"), { scriptName: "/", rawPathInfo: "/" });
  assertEquals(matchRoute(route, "/a/b"), { scriptName: "/", rawPathInfo: "/a/b" });
});

Deno.test("exact routes match only themselves: /foo is not /foo/", () => {
  const route = parseRoute("/foo");
  assertEquals(matchRoute(route, "/foo"), { scriptName: "/foo", rawPathInfo: "" });
  assertEquals(matchRoute(route, "/foo/"), undefined);
  assertEquals(matchRoute(route, "/foo/x"), undefined);
});

Deno.test("routes are matched against the raw, still-encoded path", () => {
  assertEquals(matchRoute(parseRoute("/a%20b"), "/a%20b")?.scriptName, "/a%20b");
  assertEquals(matchRoute(parseRoute("/a b"), "/a%20b"), undefined);
});

Deno.test("a route that does not start with / is refused", () => {
  assertThrows(() => parseRoute("hello"), Error, "must start with '/'");
});

Deno.test("_routes sub-routes join the parent with exactly one /", () => {
  assertEquals(joinSubroute("/foo/...", "/bar"), "/foo/bar");
  assertEquals(joinSubroute("/foo/...", "bar"), "/foo/bar");
  assertEquals(joinSubroute("/foo", "/bar/..."), "/foo/bar/...");
  assertEquals(joinSubroute("/foo/", "/bar"), "/foo/bar");
  assertEquals(joinSubroute("/", "/bar"), "/bar");
  assertEquals(joinSubroute("/...", "bar"), "/bar");
});

Deno.test("_routes output: one SUBROUTE ENTRYPOINT per non-empty line; empty means none", () => {
  assertEquals(parseRoutesOutput("/a one\n\n  /b/...   two  \r\n"), [
    { route: "/a", entrypoint: "one" },
    { route: "/b/...", entrypoint: "two" },
  ]);
  assertEquals(parseRoutesOutput(""), []);
  assertThrows(() => parseRoutesOutput("/a one extra\n"), Error, "expected 'SUBROUTE ENTRYPOINT'");
  assertThrows(() => parseRoutesOutput("/lonely\n"), Error, "/lonely");
});

Deno.test("the routing table returns the first matching handler in order", () => {
  const table = new RoutingTable([
    { pattern: parseRoute("/foo/bar"), name: "exact" },
    { pattern: parseRoute("/foo/..."), name: "prefix" },
    { pattern: parseRoute("/..."), name: "catch-all" },
  ]);
  assertEquals(table.lookup("/foo/bar")?.handler.name, "exact");
  assertEquals(table.lookup("/foo/baz")?.handler.name, "prefix");
  assertEquals(table.lookup("/foobar")?.handler.name, "catch-all");
  assertEquals(new RoutingTable([{ pattern: parseRoute("/x") }]).lookup("/y"), undefined);
});
