import { assertEquals } from "../_assert.ts";
import { compileFixture, ROOT } from "../_fixtures.ts";
import { Errno } from "../../src/wasi/errno.ts";
import { tempDir } from "../_temp.ts";
import { checksOf, expectChecks } from "./_checks.ts";

/** Runs the wasi_edges fixture: a scratch volume and a read-only one; returns its checks. */
async function edges(): Promise<Map<string, number>> {
  const scratch = await tempDir("wagi-edges-");
  const checks = await checksOf({
    module: await compileFixture("wasi_edges.wasm"),
    entrypoint: "_start",
    args: ["wasi_edges", "scratch", "ro"],
    preopens: [
      { guestPath: "scratch", hostPath: scratch },
      { guestPath: "ro", hostPath: `${ROOT}test/fixtures/data`, readOnly: true },
    ],
  });
  assertEquals([...Deno.readDirSync(scratch)], [], "the fixture cleaned up after itself");
  assertEquals(checks.get("found preopens"), 1);
  return checks;
}

const checks = await edges();
const expect = (table: Record<string, number>) => expectChecks(checks, table);

Deno.test("directory descriptors refuse reads and seeks with wasmtime's errnos", () => {
  expect({
    "seek on directory": Errno.BADF,
    "tell on directory": Errno.BADF,
    "read on directory": Errno.ISDIR,
    "prestat name too short": Errno.NAMETOOLONG,
    "fdstat of closed fd": Errno.BADF,
    "open directory for writing": Errno.ISDIR,
  });
});

Deno.test("sandbox escapes are EPERM: absolute paths, .. above the base, absolute symlinks", () => {
  expect({
    "absolute path": Errno.PERM,
    "dotdot escape": Errno.PERM,
    "symlink absolute target": Errno.PERM,
  });
});

Deno.test("trailing slashes name directories: files refuse them, new links cannot have them", () => {
  expect({
    "create file": Errno.SUCCESS,
    "file with trailing slash": Errno.NOTDIR,
    "unlink file/": Errno.NOTDIR,
    "symlink to dangling name/": Errno.NOENT,
    "symlink relative": Errno.SUCCESS,
    "link over existing": Errno.EXIST,
    "link name/": Errno.NOENT,
    "unlink a directory": Errno.ISDIR,
    "rmdir a file": Errno.NOTDIR,
    "rename file over directory": Errno.ISDIR,
  });
});

Deno.test("file times keep nanoseconds and contradictory flags are INVAL", () => {
  expect({ "set mtim": Errno.SUCCESS, "mtim exact": 1, "mtim and mtim_now": Errno.INVAL });
});

Deno.test("rights only shrink, are inherited by opened files, and gate truncation", () => {
  expect({
    "drop inherited read": Errno.SUCCESS,
    "add a right back": Errno.NOTCAPABLE,
    "open without read": Errno.SUCCESS,
    "read without the right": Errno.NOTCAPABLE,
    "truncate without the right": Errno.NOTCAPABLE,
  });
});

Deno.test("a read-only volume reads normally and refuses every change with EPERM", () => {
  expect({
    "ro open for reading": Errno.SUCCESS,
    "ro read": Errno.SUCCESS,
    "ro open for writing": Errno.PERM,
    "ro create": Errno.PERM,
    "ro mkdir": Errno.PERM,
    "ro unlink": Errno.PERM,
    "ro rename": Errno.PERM,
    "ro symlink": Errno.PERM,
    "ro link out": Errno.PERM,
  });
});

Deno.test("fd_renumber moves a descriptor and closes the old number", () => {
  expect({ "renumber onto stdin": Errno.SUCCESS, "old number closed": Errno.BADF });
});
