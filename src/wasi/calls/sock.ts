/**
 * `sock_*`: no sockets are ever handed to the guest, so every descriptor is not a socket.
 * @module
 */

import { Errno, WasiError } from "../errno.ts";
import { syscall } from "../syscall.ts";
import type { WasiState } from "../state.ts";
import type { EffectTable } from "../effects.ts";

/** What each socket call does beyond returning: nothing, there are no sockets. */
export const SOCK_EFFECTS: EffectTable = {
  sock_accept: "pure",
  sock_recv: "pure",
  sock_send: "pure",
  sock_shutdown: "pure",
};

/** The socket calls for `host`. */
export function sockCalls(host: WasiState) {
  const notSocket = (fd: number) => {
    host.descriptor(fd);
    throw new WasiError(Errno.NOTSOCK);
  };
  return {
    sock_accept: syscall((fd: number, _flags: number, _resultPtr: number) => notSocket(fd)),
    sock_recv: syscall((fd: number) => notSocket(fd)),
    sock_send: syscall((fd: number) => notSocket(fd)),
    sock_shutdown: syscall((fd: number, _how: number) => notSocket(fd)),
  };
}
