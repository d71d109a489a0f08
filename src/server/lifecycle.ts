/**
 * The runtime shell: `Deno.serve` around a fetch handler, and a graceful stop on SIGTERM and
 * SIGINT (stop accepting, let in-flight requests finish, then return).
 * @module
 */

import type { Logger } from "./logger.ts";

/** A fetch handler that also gets the client's address. */
export type FetchHandler = (
  request: Request,
  info: { remoteAddr: string },
) => Response | Promise<Response>;

/** How to listen. */
export interface ListenOptions {
  hostname: string;
  port: number;
  tls?: { cert: string; key: string };
  logger: Logger;
  /** Called with the URL once the port is bound. */
  onReady: (url: string) => void;
}

/** A running server. */
export interface RunningServer {
  /** True once a stop signal arrived. */
  readonly draining: boolean;
  /** Resolves when the server has stopped and every in-flight request has finished. */
  readonly finished: Promise<void>;
  /** Starts a graceful stop, as SIGTERM does. */
  stop(): void;
}

/** Starts serving `handler`; a stop signal drains in-flight requests and resolves `finished`. */
export function listen(handler: FetchHandler, options: ListenOptions): RunningServer {
  let draining = false;
  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    ...(options.tls ?? {}),
    onListen(addr) {
      const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
      options.onReady(`${options.tls ? "https" : "http"}://${host}:${addr.port}`);
    },
  }, (request, info) => {
    const remote = info.remoteAddr as Deno.NetAddr;
    return handler(request, { remoteAddr: remote.hostname ?? "" });
  });

  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGTERM", "SIGINT"];
  const stop = () => {
    if (draining) return;
    draining = true;
    options.logger.info("stopping: no new connections, finishing in-flight requests");
    server.shutdown();
  };
  for (const signal of signals) Deno.addSignalListener(signal, stop);
  const finished = server.finished.then(() => {
    for (const signal of signals) Deno.removeSignalListener(signal, stop);
    options.logger.info("stopped");
  });
  return {
    get draining() {
      return draining;
    },
    finished,
    stop,
  };
}
