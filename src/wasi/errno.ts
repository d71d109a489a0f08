/**
 * The one errno table of the WASI host (preview1 `errno`, identical in preview 0),
 * and the mapping from host failures to it.
 * @module
 */

/** WASI preview1 error numbers, as in the spec's `errno` enum. */
export const Errno = {
  SUCCESS: 0,
  TOOBIG: 1,
  ACCES: 2,
  ADDRINUSE: 3,
  ADDRNOTAVAIL: 4,
  AFNOSUPPORT: 5,
  AGAIN: 6,
  ALREADY: 7,
  BADF: 8,
  BADMSG: 9,
  BUSY: 10,
  CANCELED: 11,
  CHILD: 12,
  CONNABORTED: 13,
  CONNREFUSED: 14,
  CONNRESET: 15,
  DEADLK: 16,
  DESTADDRREQ: 17,
  DOM: 18,
  DQUOT: 19,
  EXIST: 20,
  FAULT: 21,
  FBIG: 22,
  HOSTUNREACH: 23,
  IDRM: 24,
  ILSEQ: 25,
  INPROGRESS: 26,
  INTR: 27,
  INVAL: 28,
  IO: 29,
  ISCONN: 30,
  ISDIR: 31,
  LOOP: 32,
  MFILE: 33,
  MLINK: 34,
  MSGSIZE: 35,
  MULTIHOP: 36,
  NAMETOOLONG: 37,
  NETDOWN: 38,
  NETRESET: 39,
  NETUNREACH: 40,
  NFILE: 41,
  NOBUFS: 42,
  NODEV: 43,
  NOENT: 44,
  NOEXEC: 45,
  NOLCK: 46,
  NOLINK: 47,
  NOMEM: 48,
  NOMSG: 49,
  NOPROTOOPT: 50,
  NOSPC: 51,
  NOSYS: 52,
  NOTCONN: 53,
  NOTDIR: 54,
  NOTEMPTY: 55,
  NOTRECOVERABLE: 56,
  NOTSOCK: 57,
  NOTSUP: 58,
  NOTTY: 59,
  NXIO: 60,
  OVERFLOW: 61,
  OWNERDEAD: 62,
  PERM: 63,
  PIPE: 64,
  PROTO: 65,
  PROTONOSUPPORT: 66,
  PROTOTYPE: 67,
  RANGE: 68,
  ROFS: 69,
  SPIPE: 70,
  SRCH: 71,
  STALE: 72,
  TIMEDOUT: 73,
  TXTBSY: 74,
  XDEV: 75,
  NOTCAPABLE: 76,
} as const;

/** One of the values of {@link Errno}. */
export type ErrnoValue = (typeof Errno)[keyof typeof Errno];

/** Thrown inside the host to return an errno to the guest; never escapes to the guest. */
export class WasiError extends Error {
  constructor(readonly errno: ErrnoValue) {
    super(`WASI errno ${errno}`);
  }
}

/** POSIX error codes (as Deno reports them in `error.code`) mapped to WASI errnos. */
const POSIX_CODES: Record<string, ErrnoValue> = {
  E2BIG: Errno.TOOBIG,
  EACCES: Errno.ACCES,
  EAGAIN: Errno.AGAIN,
  EBADF: Errno.BADF,
  EBUSY: Errno.BUSY,
  EEXIST: Errno.EXIST,
  EFBIG: Errno.FBIG,
  EINTR: Errno.INTR,
  EINVAL: Errno.INVAL,
  EIO: Errno.IO,
  EISDIR: Errno.ISDIR,
  ELOOP: Errno.LOOP,
  EMFILE: Errno.MFILE,
  EMLINK: Errno.MLINK,
  ENAMETOOLONG: Errno.NAMETOOLONG,
  ENFILE: Errno.NFILE,
  ENODEV: Errno.NODEV,
  ENOENT: Errno.NOENT,
  ENOMEM: Errno.NOMEM,
  ENOSPC: Errno.NOSPC,
  ENOSYS: Errno.NOSYS,
  ENOTDIR: Errno.NOTDIR,
  ENOTEMPTY: Errno.NOTEMPTY,
  ENOTSOCK: Errno.NOTSOCK,
  ENOTSUP: Errno.NOTSUP,
  EOPNOTSUPP: Errno.NOTSUP,
  ENXIO: Errno.NXIO,
  EOVERFLOW: Errno.OVERFLOW,
  EPERM: Errno.PERM,
  EPIPE: Errno.PIPE,
  ERANGE: Errno.RANGE,
  EROFS: Errno.ROFS,
  ESPIPE: Errno.SPIPE,
  ETXTBSY: Errno.TXTBSY,
  EXDEV: Errno.XDEV,
  EDQUOT: Errno.DQUOT,
};

/**
 * The errno for a failure caught at a WASI call boundary: a {@link WasiError}'s own, a
 * host file-system error's POSIX code, `FAULT` for out-of-bounds guest memory, else `IO`.
 */
export function errnoOf(error: unknown): ErrnoValue {
  if (error instanceof WasiError) return error.errno;
  if (error instanceof RangeError) return Errno.FAULT;
  // The POSIX code is more precise than Deno's class (PermissionDenied is EACCES or EPERM).
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && code in POSIX_CODES) return POSIX_CODES[code];
  if (error instanceof Deno.errors.NotFound) return Errno.NOENT;
  if (error instanceof Deno.errors.AlreadyExists) return Errno.EXIST;
  if (error instanceof Deno.errors.PermissionDenied) return Errno.ACCES;
  if (error instanceof Deno.errors.NotADirectory) return Errno.NOTDIR;
  if (error instanceof Deno.errors.IsADirectory) return Errno.ISDIR;
  if (error instanceof Deno.errors.FilesystemLoop) return Errno.LOOP;
  if (error instanceof Deno.errors.NotSupported) return Errno.NOTSUP;
  if (error instanceof Deno.errors.BrokenPipe) return Errno.PIPE;
  return Errno.IO;
}
