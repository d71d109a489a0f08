/**
 * What a guest may do while it runs on the server's thread. Only calls without lasting
 * effects are let through (reading arguments, clocks, files; writing stdout and stderr, which
 * are kept in memory). Any other call, such as writing a file, sleeping or opening a socket,
 * throws {@link Migrate} before it happens: the run is dropped and done again from the start
 * in the worker pool, which nothing the guest did so far can tell apart from a first run.
 * @module
 */

import { FdFlags, OFlags, Rights } from "../wasi/constants.ts";

/** Thrown to abandon a run on the server's thread; `reason` says why (for tests and logs). */
export class Migrate {
  constructor(readonly reason: string) {}
}

/** Calls that only read state, or change only the run's own descriptor table. */
const ALLOWED = new Set([
  "args_get",
  "args_sizes_get",
  "environ_get",
  "environ_sizes_get",
  "clock_res_get",
  "clock_time_get",
  "random_get",
  "fd_advise",
  "fd_close",
  "fd_fdstat_get",
  "fd_fdstat_set_flags",
  "fd_fdstat_set_rights",
  "fd_filestat_get",
  "fd_pread",
  "fd_prestat_get",
  "fd_prestat_dir_name",
  "fd_read",
  "fd_readdir",
  "fd_renumber",
  "fd_seek",
  "fd_tell",
  "path_filestat_get",
  "path_readlink",
  "proc_exit",
  "proc_raise",
  "sched_yield",
]);

/** Rights that let a descriptor change a file. */
const WRITE_RIGHTS = Rights.FD_WRITE | Rights.FD_ALLOCATE | Rights.FD_FILESTAT_SET_SIZE |
  Rights.FD_DATASYNC;

/** `path_open` flags that create or truncate. */
const CREATE_OR_TRUNCATE = OFlags.CREAT | OFlags.EXCL | OFlags.TRUNC;
/** The descriptor flag that opens for appending (the host then opens the file writable). */
const FD_APPEND = FdFlags.APPEND;

type Call = (...args: never[]) => unknown;

/**
 * The WASI imports `imports` limited for a run on the server's thread. `outputOverflowed`
 * says whether stdout grew past what is kept in memory (checked after each write).
 */
export function inlineImports(
  imports: WebAssembly.Imports,
  outputOverflowed: () => boolean,
): WebAssembly.Imports {
  const limited: WebAssembly.Imports = {};
  for (const [moduleName, calls] of Object.entries(imports)) {
    const table: Record<string, Call> = {};
    for (const [name, call] of Object.entries(calls as Record<string, Call>)) {
      table[name] = limit(name, call, outputOverflowed);
    }
    limited[moduleName] = table;
  }
  return limited;
}

function limit(name: string, call: Call, outputOverflowed: () => boolean): Call {
  if (ALLOWED.has(name)) return call;
  if (name === "fd_write") {
    const write = call as (fd: number, iovs: number, count: number, written: number) => number;
    return (fd: number, iovs: number, count: number, written: number) => {
      // stdout and stderr are kept in memory; anything else is a file being changed.
      if (fd > 2) throw new Migrate("fd_write to a file");
      const errno = write(fd, iovs, count, written);
      if (outputOverflowed()) throw new Migrate("output larger than kept in memory");
      return errno;
    };
  }
  if (name === "path_open") {
    const open = call as (...args: unknown[]) => number;
    return (...args: unknown[]) => {
      const oflags = args[4] as number;
      const rights = args[5] as bigint;
      const fdflags = args[7] as number;
      if (oflags & CREATE_OR_TRUNCATE || rights & WRITE_RIGHTS || fdflags & FD_APPEND) {
        throw new Migrate("path_open for writing");
      }
      return open(...args);
    };
  }
  return () => {
    throw new Migrate(name);
  };
}
