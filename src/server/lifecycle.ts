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
  /** Called with the URL (and the port) once the port is bound. */
  onReady: (url: string, port: number) => void;
  /** How long a stop waits for in-flight requests before ending them. */
  drainTimeoutMs: number;
  /** Ends what is still running when the drain timeout passes (stops the guests). */
  onDrainTimeout: () => void;
  /** Share the port with other listeners of this process (SO_REUSEPORT: several isolates). */
  reusePort?: boolean;
  /** With `reusePort`: the process's first listener on the port, which checks it is free. */
  firstOfPort?: boolean;
  /** Stop on SIGTERM and SIGINT (default); without, only {@link RunningServer.stop} stops it. */
  signals?: boolean;
  /** Told when a stop begins, before the drain. */
  onStop?: () => void;
}

/** A running server. */
export interface RunningServer {
  /** Resolves when the server has stopped and every in-flight request has finished. */
  readonly finished: Promise<void>;
  /** Requests in flight now, responses still being sent included. */
  readonly inFlight: number;
  /** Stops as a stop signal does: refuses new requests, drains, closes. */
  stop(): void;
}

/** The 503 every request gets while the server stops. */
function shuttingDown(): Response {
  return new Response("Service Unavailable: shutting down\n", {
    status: 503,
    headers: { "content-type": "text/plain;charset=UTF-8", connection: "close" },
  });
}

/**
 * The portable core of a graceful stop: counts the responses still being made, answers 503
 * once stopping, and says when the last one in flight has been sent.
 */
export class Drain {
  #draining = false;
  #inFlight = 0;
  #idle: (() => void) | undefined;

  /** True once {@link stop} was called. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Responses still being made (or sent). */
  get inFlight(): number {
    return this.#inFlight;
  }

  /**
   * Answers `request` with `handler`, or 503 while stopping. A response returned at once has
   * its body in hand and is sent even while the listener shuts down; one still being made is
   * in flight until `completed` settles (sent, streamed body included, request body read).
   */
  handle(
    handler: FetchHandler,
    request: Request,
    client: ClientInfo,
    completed: Promise<void>,
  ): Response | Promise<Response> {
    if (this.#draining) return shuttingDown();
    const response = handler(request, client);
    if (response instanceof Response) return response;
    this.#inFlight++;
    const settled = () => {
      if (--this.#inFlight === 0) this.#idle?.();
    };
    completed.then(settled, settled);
    return response;
  }

  /** Stops taking requests; resolves once nothing is in flight. */
  stop(): Promise<void> {
    this.#draining = true;
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => (this.#idle = resolve));
  }
}

/** How long after the listener failed (out of descriptors, say) it listens again. */
const RELISTEN_AFTER_MS = 1000;

/**
 * Starts serving `handler`; a stop signal drains in-flight requests and resolves `finished`.
 * A listener that fails while serving (Deno.serve ends with an error when it cannot accept a
 * connection, for instance with no descriptors left) is logged and started again.
 */
export function listen(handler: FetchHandler, options: ListenOptions): RunningServer {
  const drain = new Drain();
  let server: Deno.HttpServer<Deno.NetAddr>;
  let done = () => {};
  const stopped = new Promise<void>((resolve) => (done = resolve));
  let ready = false;
  const start = () => {
    if (options.reusePort && options.firstOfPort && !ready && options.port !== 0) {
      // SO_REUSEPORT would let this process share a port another server (a second copy of
      // this one, say) already listens on: a plain bind first says whether it is busy.
      Deno.listen({ hostname: options.hostname, port: options.port }).close();
    }
    server = Deno.serve({
      hostname: options.hostname,
      port: options.port,
      ...(options.reusePort ? { reusePort: true } : {}),
      ...(options.tls ?? {}),
      onListen(addr) {
        if (ready) return;
        ready = true;
        const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
        options.onReady(`${options.tls ? "https" : "http"}://${host}:${addr.port}`, addr.port);
      },
    }, (request, info) => drain.handle(handler, request, info, info.completed));
    server.finished.then(done, (error) => {
      if (drain.draining) return done();
      options.logger.error(
        `the listener failed (${(error as Error).message}); listening again in ` +
          `${RELISTEN_AFTER_MS} ms`,
      );
      setTimeout(() => {
        if (drain.draining) return done();
        try {
          start();
        } catch (again) {
          options.logger.error(`cannot listen again: ${(again as Error).message}`);
          setTimeout(start, RELISTEN_AFTER_MS);
        }
      }, RELISTEN_AFTER_MS);
    });
  };
  start();

  const signals: Deno.Signal[] = options.signals === false
    ? []
    : Deno.build.os === "windows"
    ? ["SIGINT"]
    : ["SIGTERM", "SIGINT"];
  const stop = () => {
    if (drain.draining) return;
    options.onStop?.();
    options.logger.info(`stopping: refusing new requests, finishing ${drain.inFlight} in flight`);
    // Deno's shutdown() cuts request bodies still being uploaded, so the listener is closed
    // only once the last in-flight response has been sent.
    drain.stop().then(() => server.shutdown());
    drainDeadline = setTimeout(() => {
      options.logger.warn(
        `drain timeout of ${options.drainTimeoutMs} ms passed: ending ${drain.inFlight} request(s)`,
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
  const finished = Promise.race([stopped, forced]).then(() => {
    clearTimeout(drainDeadline);
    options.logger.info("stopped");
  });
  return {
    finished,
    get inFlight() {
      return drain.inFlight;
    },
    stop,
  };
}
