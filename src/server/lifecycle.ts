/**
 * The runtime shell: `Deno.serve` around a fetch handler, and a graceful stop on SIGTERM and
 * SIGINT, as Knative's queue-proxy and kubelet expect: new requests (and readiness) get 503,
 * in-flight ones finish (streams included), then the listener closes — and after the drain
 * timeout the stragglers are ended so that the process always exits.
 * @module
 */

import type { Logger } from "./logger.ts";

/** After the drain timeout ended the stragglers, how long until the process stops anyway. */
const FORCED_STOP_GRACE_MS = 1000;

/**
 * Where a request came from, as the platform reports it. Read `remoteAddr` only when it is
 * needed: each read is a call into the runtime.
 */
export interface ClientInfo {
  readonly remoteAddr: { readonly transport: string; readonly hostname?: string };
}

/**
 * A fetch handler that also gets the client's address. A response it returns synchronously
 * must not need the request body any more: it is sent as it is, even while the server stops.
 */
export type FetchHandler = (
  request: Request,
  client: ClientInfo,
) => Response | Promise<Response>;

/** How to listen. */
export interface ListenOptions {
  hostname: string;
  port: number;
  tls?: { cert: string; key: string };
  logger: Logger;
  /** Called with the URL once the port is bound. */
  onReady: (url: string) => void;
  /** How long a stop waits for in-flight requests before ending them. */
  drainTimeoutMs: number;
  /** Ends what is still running when the drain timeout passes (stops the guests). */
  onDrainTimeout: () => void;
}

/** A running server. */
export interface RunningServer {
  /** Resolves when the server has stopped and every in-flight request has finished. */
  readonly finished: Promise<void>;
}

/** Starts serving `handler`; a stop signal drains in-flight requests and resolves `finished`. */
export function listen(handler: FetchHandler, options: ListenOptions): RunningServer {
  let draining = false;
  let inFlight = 0;
  let idle: (() => void) | undefined;
  const settled = () => {
    if (--inFlight === 0) idle?.();
  };
  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    ...(options.tls ?? {}),
    onListen(addr) {
      const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
      options.onReady(`${options.tls ? "https" : "http"}://${host}:${addr.port}`);
    },
  }, (request, info) => {
    if (draining) {
      return new Response("Service Unavailable: shutting down\n", {
        status: 503,
        headers: { "content-type": "text/plain;charset=UTF-8", connection: "close" },
      });
    }
    const response = handler(request, info);
    // A response returned at once has a body in hand, which the listener sends even while it
    // shuts down. One still being made is in flight until it has been sent, streamed body
    // included (and its request body read): the listener closes only after those.
    if (response instanceof Response) return response;
    inFlight++;
    info.completed.then(settled, settled);
    return response;
  });

  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGTERM", "SIGINT"];
  const stop = () => {
    if (draining) return;
    draining = true;
    options.logger.info(`stopping: refusing new requests, finishing ${inFlight} in flight`);
    // Deno's shutdown() cuts request bodies still being uploaded, so the listener is closed
    // only once the last in-flight response has been sent.
    const drained = inFlight === 0
      ? Promise.resolve()
      : new Promise<void>((resolve) => (idle = resolve));
    drained.then(() => server.shutdown());
    drainDeadline = setTimeout(() => {
      options.logger.warn(
        `drain timeout of ${options.drainTimeoutMs} ms passed: ending ${inFlight} request(s)`,
      );
      options.onDrainTimeout();
      server.shutdown();
      // Responses whose guests were just stopped end at once; give them a moment to go out.
      setTimeout(forceStop, FORCED_STOP_GRACE_MS);
    }, options.drainTimeoutMs);
  };
  let drainDeadline: ReturnType<typeof setTimeout> | undefined;
  let forceStop = () => {};
  const forced = new Promise<void>((resolve) => (forceStop = resolve));
  for (const signal of signals) Deno.addSignalListener(signal, stop);
  // The listeners stay until the process exits: a second signal while stopping is ignored
  // rather than killing the process with the default action.
  const finished = Promise.race([server.finished, forced]).then(() => {
    clearTimeout(drainDeadline);
    options.logger.info("stopped");
  });
  return { finished };
}
