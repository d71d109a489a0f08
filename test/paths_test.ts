import { assertEquals } from "./_assert.ts";
import { dirname, exists, fromFileUrl, isAbsolute, join, normalize } from "../src/paths.ts";

Deno.test("paths join and normalize as POSIX does: . and .. resolved, .. stops at the root", () => {
  assertEquals(join("/srv/app", "modules/../hello.wasm"), "/srv/app/hello.wasm");
  assertEquals(join("/srv//app/", "./x"), "/srv/app/x");
  assertEquals(join("/", "../../etc"), "/etc");
  assertEquals(normalize("a/../../b"), "../b");
  assertEquals(normalize("./"), ".");
  assertEquals([dirname("/a/b.toml"), dirname("b.toml"), dirname("/b")], ["/a", ".", "/"]);
  assertEquals([isAbsolute("/x"), isAbsolute("x")], [true, false]);
});

Deno.test("file URLs become paths with escapes decoded; existence follows the file system", () => {
  assertEquals(fromFileUrl("file:///tmp/a%20b.wasm"), "/tmp/a b.wasm");
  assertEquals([exists("/"), exists("/no/such/path")], [true, false]);
});
