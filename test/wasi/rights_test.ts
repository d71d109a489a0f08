import { assertEquals } from "../_assert.ts";
import { compileFixture } from "../_fixtures.ts";
import { Errno } from "../../src/wasi/errno.ts";
import { tempDir } from "../_temp.ts";
import { checksOf, expectChecks } from "./_checks.ts";

const scratch = await tempDir("wagi-rights-");
const checks = await checksOf({
  module: await compileFixture("wasi_rights.wasm"),
  entrypoint: "_start",
  args: ["wasi_rights", "scratch"],
  preopens: [{ guestPath: "scratch", hostPath: scratch }],
});
const expect = (table: Record<string, number>) => expectChecks(checks, table);

Deno.test("the rights fixture ran against its volume and left it empty", () => {
  expect({ "found preopen": 1, "open with every right": Errno.SUCCESS });
  assertEquals([...Deno.readDirSync(scratch)], []);
});

Deno.test("a file that dropped FD_READ and FD_WRITE can neither read nor write, even positioned", () => {
  expect({
    "write": Errno.SUCCESS,
    "seek": Errno.SUCCESS,
    "read": Errno.SUCCESS,
    "drop read and write": Errno.SUCCESS,
    "read and write gone": 1,
    "seek kept": 1,
    "fd_read without FD_READ": Errno.NOTCAPABLE,
    "fd_write without FD_WRITE": Errno.NOTCAPABLE,
    "fd_pread without FD_READ": Errno.NOTCAPABLE,
    "fd_pwrite without FD_WRITE": Errno.NOTCAPABLE,
  });
});

Deno.test("a dropped right cannot be taken back, nor an undefined one added", () => {
  expect({ "add read back": Errno.NOTCAPABLE, "add an undefined bit": Errno.NOTCAPABLE });
});

Deno.test("seeking needs FD_SEEK; staying put and fd_tell need FD_TELL", () => {
  expect({
    "drop seek": Errno.SUCCESS,
    "fd_seek SET without FD_SEEK": Errno.NOTCAPABLE,
    "fd_seek CUR+1 without FD_SEEK": Errno.NOTCAPABLE,
    "fd_seek CUR+0 with FD_TELL": Errno.SUCCESS,
    "fd_tell with FD_TELL": Errno.SUCCESS,
    "drop tell": Errno.SUCCESS,
    "fd_tell without FD_TELL": Errno.NOTCAPABLE,
    "fd_seek CUR+0 without FD_TELL": Errno.NOTCAPABLE,
  });
});

Deno.test("every other file call is NOTCAPABLE once its right is dropped, and changes nothing", () => {
  expect({
    "fd_filestat_get with the right": Errno.SUCCESS,
    "fd_filestat_get without the right": Errno.NOTCAPABLE,
    "fd_filestat_set_size without the right": Errno.NOTCAPABLE,
    "fd_filestat_set_times without the right": Errno.NOTCAPABLE,
    "fd_allocate without the right": Errno.NOTCAPABLE,
    "fd_sync without the right": Errno.NOTCAPABLE,
    "fd_datasync without the right": Errno.NOTCAPABLE,
    "fd_advise without the right": Errno.NOTCAPABLE,
    "fd_fdstat_set_flags without the right": Errno.NOTCAPABLE,
    "file size unchanged": 1,
  });
});

Deno.test("contradictory fstflags are INVAL before any right or descriptor check", () => {
  expect({ "contradictory flags first": Errno.INVAL, "path flags checked first": Errno.INVAL });
});

Deno.test("poll_oneoff reports NOTCAPABLE on a descriptor that dropped FD_READ", () => {
  expect({
    "poll read with the right": Errno.SUCCESS,
    "poll read without FD_READ": Errno.NOTCAPABLE,
  });
});

Deno.test("the open mode and the stream kind keep their errnos: BADF, SPIPE", () => {
  expect({
    "write to a file opened for reading": Errno.BADF,
    "seek on a file opened without FD_SEEK": Errno.NOTCAPABLE,
    "seek on stdin": Errno.SPIPE,
  });
});

Deno.test("a directory that dropped a right refuses the call and creates nothing", () => {
  expect({
    "mkdir": Errno.SUCCESS,
    "open sub": Errno.SUCCESS,
    "fd_readdir with the right": Errno.SUCCESS,
    "fd_readdir without the right": Errno.NOTCAPABLE,
    "path_create_directory without the right": Errno.NOTCAPABLE,
    "path_open CREAT without PATH_CREATE_FILE": Errno.NOTCAPABLE,
    "path_filestat_set_times without the right": Errno.NOTCAPABLE,
    "path_open without PATH_OPEN": Errno.NOTCAPABLE,
    "nothing created in sub": 1,
  });
});

Deno.test("what a directory stops passing on, what it opens does not hold", () => {
  expect({
    "drop inherited read and readdir": Errno.SUCCESS,
    "open a child asking for more": Errno.SUCCESS,
    "child lacks readdir": 1,
    "child fd_readdir": Errno.NOTCAPABLE,
    "open a file asking for read": Errno.SUCCESS,
    "file lacks read": 1,
    "child fd_read": Errno.NOTCAPABLE,
  });
});
