/**
 * The app: `/healthz` on a Hono router, then the WAGI routing table; each request becomes a
 * guest run through the executor (on this thread, or streamed both ways through the pool),
 * and the module's output becomes the response.
 * @module
 */

import { Hono } from "hono";
import { timing } from "hono/timing";
import {
  authorityOf,
  cgiArgv,
  CgiEnvironments,
  type HostPort,
  type RawTarget,
  rawTarget,
} from "../cgi/request.ts";
import { CgiOutputParser } from "../cgi/response.ts";
import type { RouteMatch } from "../routing/route.ts";
import type { Executor, RunOutcome } from "../run/contract.ts";
import type { RoutingTable } from "../routing/table.ts";
import type { BodyCaps } from "../config/limits.ts";
import type { RouteHandler } from "./handlers.ts";
import type { ModuleLog } from "./module_log.ts";
import type { Logger } from "./logger.ts";
import type { ClientInfo, FetchHandler } from "./lifecycle.ts";
import { failureReason, respond, respondFinished, text } from "./respond.ts";
import { BodyBudget, type GuestBody, withKnownLength } from "./request_body.ts";
import { Spooler } from "./spool.ts";
import type { Metrics, MetricsSnapshot } from "./metrics.ts";
import type { AccessLog } from "./access_log.ts";
import { httpRequestHead } from "./component_request.ts";

/** What the platform shell passes along with each request. */
export type AppBindings = { Bindings: ClientInfo };

/** Everything the app needs. */
export interface AppOptions {
  table: RoutingTable<RouteHandler>;
  executor: Executor;
  moduleLog: ModuleLog;
  logger: Logger;
  /** `--hostname`: fallback for `SERVER_NAME`/`SERVER_PORT`. */
  hostname: HostPort;
  /** `--env-file` and `-e` variables, in order. */
  globalEnv: readonly (readonly [string, string])[];
  scheme: "http" | "https";
  caps: BodyCaps;
  /** The memory all bodies read before their guest starts may hold at once. */
  bodyBudget?: BodyBudget;
  /** Where responses wait while their upload still arrives (the app makes one if not given). */
  spooler?: Spooler;
  /** Most descriptors a run may have open (`--max-open-files`). */
  maxOpenFiles?: number;
  /** Where requests are counted; none when metrics are off. */
  metrics?: Metrics;
  /** Answer `/metrics` on this app (else they have their own listener, or are off). */
  serveMetrics?: boolean;
  /** What the process's other server isolates counted, added to a scrape (see --servers). */
  peerMetrics?: PeerMetrics;
  /** Where a line per request goes; none when off. */
  accessLog?: AccessLog;
  /** Answer `/_wagi/routes` with the routing table as JSON (off unless asked for). */
  exposeRoutes?: boolean;
}

/** A request without a body, as the guest gets it. */
const NO_BODY: GuestBody = { stream: null, length: 0, held: 0 };

/** The environment and argv given to a module that cannot read them. */
const NO_VARIABLES: readonly (readonly [string, string])[] = [];
const NO_ARGS: readonly string[] = [];

/** "METHOD path → module#entrypoint" for log lines, built only when a line is written. */
class LogPlace {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly handler: RouteHandler,
  ) {}
  toString(): string {
    const { entry, entrypoint, component } = this.handler;
    // A component runs through its world's export, not a named entrypoint.
    return `${this.method} ${this.path} → ${entry.module}${component ? "" : `#${entrypoint}`}`;
  }
}

/** The WAGI side of the app: a request in, the module's response out. */
export type WagiHandler = (
  request: Request,
  client: ClientInfo,
  target: RawTarget,
) => Response | Promise<Response>;

/**
 * The handler for every request the routing table may answer. It returns a plain Response
 * (no promise) when the module ran on this thread, so that the common case costs no hops.
 */
export function createWagiHandler(options: AppOptions): WagiHandler {
  const { table, executor, moduleLog, logger, caps } = options;
  const budget = options.bodyBudget ?? new BodyBudget();
  // What the CGI translation remembers between requests, for this app alone.
  const environments = new CgiEnvironments();
  // An HTTP component's environment: the server's and its entry's variables, made once.
  const componentEnvs = new WeakMap<RouteHandler, [string, string][]>();
  const configuredEnv = (handler: RouteHandler) => {
    let env = componentEnvs.get(handler);
    if (!env) {
      env = [...options.globalEnv, ...Object.entries(handler.entry.environment)].map((
        [k, v],
      ) => [k, v]);
      componentEnvs.set(handler, env);
    }
    return env;
  };
  const parser = new CgiOutputParser();
  const streaming = {
    logger,
    maxResponseBytes: caps.maxResponseBytes,
    parser,
    spooler: options.spooler ?? new Spooler(),
    bodyBudget: budget,
  };
  // Said once per name (a bounded number of them): clients choose header names.
  const dropped = new Set<string>();
  environments.onDroppedHeader = (name) => {
    if (dropped.has(name) || dropped.size >= 100) return;
    dropped.add(name);
    logger.warn(`request header '${name}' dropped: a name with '_' could pass for another one`);
  };

  /** Appends a run's stderr to its route's log; a failed run's log line points there. */
  const logStderr = (handler: RouteHandler, where: LogPlace, outcome: RunOutcome) =>
    moduleLog.append(handler.logKey, outcome.stderr).then(() => {
      if (failureReason(outcome) !== undefined && outcome.stderr.length > 0) {
        logger.error(`${where}: the module's stderr is in ${moduleLog.fileFor(handler.logKey)}`);
      }
    }).catch((error) => logger.error(`${where}: cannot write the stderr log: ${error.message}`));

  const runRoute = (
    request: Request,
    client: ClientInfo,
    target: RawTarget,
    found: { handler: RouteHandler; match: RouteMatch },
    body: GuestBody,
  ): Response | Promise<Response> => {
    const { handler, match } = found;
    // A module that cannot read its environment or argv (it does not import the calls) would
    // never see them: building them (and asking for the client's address) is most of the
    // CGI work for a small module.
    // An HTTP component is handed the request itself, and sees only the environment it is
    // configured with.
    const head = handler.component === "http"
      ? httpRequestHead(request, target, options.scheme)
      : undefined;
    const env = head
      ? configuredEnv(handler)
      : !handler.reads.env
      ? NO_VARIABLES
      : environments.build(
        {
          method: request.method,
          target,
          headers: request.headers,
          remoteAddr: client.remoteAddr.hostname ?? "",
          bodyLength: body.length,
          scheme: options.scheme,
          ...authorityOf(request, options.scheme),
        },
        { ...match, matchedRoute: handler.matchedRoute },
        {
          hostname: options.hostname,
          globalEnv: options.globalEnv,
          moduleEnv: handler.entry.environment,
        },
      );
    const runStarted = metrics ? performance.now() : 0;
    const execution = executor.run({
      module: handler.module,
      entrypoint: handler.entrypoint,
      args: handler.reads.args ? cgiArgv(target, handler.entry.argv) : NO_ARGS,
      env,
      preopens: handler.entry.volumes,
      stdin: body.bytes ?? body.stream,
      timeoutMs: handler.timeoutMs,
      maxStdin: caps.maxBodyBytes,
      maxOutput: caps.maxResponseBytes,
      outbound: handler.outbound,
      maxDescriptors: options.maxOpenFiles,
      group: handler.matchedRoute,
      request: head,
    });
    const where = new LogPlace(request.method, target.path, handler);
    // The body read ahead is the run's until it ends.
    if (body.held > 0) execution.done.finally(() => budget.give(body.held));
    if (metrics) {
      if (execution.finished) metrics.guestTime(handler, (performance.now() - runStarted) / 1000);
      else {
        execution.done.then(() =>
          metrics.guestTime(handler, (performance.now() - runStarted) / 1000)
        );
      }
    }
    if (execution.finished) {
      // It ran on this thread and has ended: no stream, no cancellation to wire up. Its
      // stdout is only valid until the next run, so the response is built right away.
      const { outcome } = execution.finished;
      if (outcome.stderr.length > 0) logStderr(handler, where, outcome);
      return respondFinished(execution.finished, where, logger, parser);
    }
    // A client that goes away stops the guest (a stop of a run that ended does nothing, so the
    // listener is never taken off: that cost every pool run a promise and a search).
    request.signal.addEventListener("abort", () => execution.cancel(), { once: true });
    execution.done.then((outcome) => {
      if (outcome.stop === "timeout") countTimeout();
      if (outcome.stderr.length > 0) logStderr(handler, where, outcome);
    });
    // A run that comes back whole (most pool runs) needs no stream at all.
    const declared = body.length === "" ? undefined : body.length;
    return execution.whole
      ? execution.whole.then((whole) =>
        whole
          ? respondFinished(whole, where, logger, parser)
          : respond(execution, where, streaming, declared)
      )
      : respond(execution, where, streaming, declared);
  };

  const metrics = options.metrics;
  const nothing = () => {};
  const countTimeout = metrics?.counter(
    "wagi_timeouts_total",
    "Runs stopped at their route's timeout (answered 504, or cut off).",
  ) ?? nothing;
  const countTooLarge = metrics?.counter(
    "wagi_body_too_large_total",
    "Requests refused with 413: a body over --max-body.",
  ) ?? nothing;
  const countTooSlow = metrics?.counter(
    "wagi_body_too_slow_total",
    "Requests answered 408: a body that did not arrive within the route's timeout.",
  ) ?? nothing;

  const answer = (
    request: Request,
    client: ClientInfo,
    target: RawTarget,
    found: { handler: RouteHandler; match: RouteMatch },
  ): Response | Promise<Response> => {
    // No body: nothing to wait for.
    if (request.body === null) return runRoute(request, client, target, found, NO_BODY);
    const declared = request.headers.get("content-length");
    if (declared !== null && Number(declared) > caps.maxBodyBytes) {
      countTooLarge();
      return text("Payload Too Large\n", 413);
    }
    return withKnownLength(request, {
      maxBytes: caps.maxBodyBytes,
      readWholeUpTo: executor.wholeStdinBytes,
      timeoutMs: found.handler.timeoutMs,
      budget,
    }).then((body) => {
      if (body === "too large") {
        countTooLarge();
        return text("Payload Too Large\n", 413);
      }
      if (body === "too slow") {
        countTooSlow();
        return text("Request Timeout: the body did not arrive in time\n", 408);
      }
      return runRoute(request, client, target, found, body);
    });
  };

  const accessLog = options.accessLog;
  if (!metrics && !accessLog) {
    return (request, client, target) => {
      const found = table.lookup(target.path);
      return found ? answer(request, client, target, found) : text("Not Found\n", 404);
    };
  }
  const observe = observer(options);
  return (request, client, target) => {
    const started = performance.now();
    const found = table.lookup(target.path);
    const route = found?.handler;
    const response = found ? answer(request, client, target, found) : text("Not Found\n", 404);
    if (response instanceof Response) {
      observe(request, client, route, response, started);
      return response;
    }
    return response.then((answered) => {
      observe(request, client, route, answered, started);
      return answered;
    });
  };
}

/**
 * Counts an answered request (metrics) and logs it (access log), given when its handling
 * `started` (performance.now()).
 */
function observer(options: AppOptions) {
  const { metrics, accessLog } = options;
  const protocol = options.scheme === "http" ? "HTTP/1.1" : "HTTP";
  return (
    request: Request,
    client: ClientInfo,
    route: RouteHandler | undefined,
    response: Response,
    started: number,
  ) => {
    const ms = performance.now() - started;
    metrics?.record(route, response.status, ms / 1000);
    if (!accessLog) return;
    const length = response.headers.get("content-length");
    const url = request.url;
    // The target as sent: from the first "/" after the authority.
    const pathStart = url.indexOf("/", url.indexOf("//") + 2);
    accessLog.add({
      remote: client.remoteAddr.hostname ?? "",
      method: request.method,
      target: pathStart === -1 ? "/" : url.slice(pathStart),
      protocol,
      status: response.status,
      bytes: length === null ? undefined : Number(length),
      time: Date.now() - ms,
      durationMs: ms,
      route: route?.matchedRoute,
    });
  };
}

/**
 * Builds the app: the server's own endpoints (`/healthz`) on a Hono router, and every other
 * request straight to the WAGI handler and its precomputed routing table, which is faster
 * than a second router on the hot path.
 */
export function createApp(options: AppOptions): FetchHandler {
  const wagi = createWagiHandler(options);
  const builtIn = new Hono<AppBindings>();
  const failed = (error: Error) => {
    // A client that went away mid-request is a normal event: nobody reads this answer.
    if (CLIENT_GONE.some((kind) => error instanceof kind)) return text("Client gone\n", 499);
    options.logger.error(`unhandled: ${error.stack ?? error.message}`);
    return text("Internal Server Error\n", 500);
  };
  // The built-in health check wins over any user route (docs/wagi.md, "Routes"). While the server drains,
  // the lifecycle answers every request, this one included, with 503.
  // How long the server's own endpoints take, for whoever calls them (Server-Timing).
  builtIn.use(timing());
  builtIn.get("/healthz", () => text("OK", 200));
  const metrics = options.serveMetrics ? options.metrics : undefined;
  if (metrics) builtIn.get("/metrics", () => metricsResponse(metrics, options.peerMetrics));
  const builtInPaths = new Set(["/healthz"]);
  if (metrics) builtInPaths.add("/metrics");
  if (options.exposeRoutes) {
    // Built once per configuration: a reload replaces the table's handlers.
    let listed: readonly RouteHandler[] | undefined;
    let listing = "";
    builtIn.get("/_wagi/routes", (c) => {
      if (listed !== options.table.handlers) {
        listed = options.table.handlers;
        listing = JSON.stringify(routeListing(listed), null, 2) + "\n";
      }
      return c.body(listing, 200, { "content-type": "application/json" });
    });
    builtInPaths.add("/_wagi/routes");
  }
  builtIn.onError(failed);

  const observe = options.accessLog ? observer({ ...options, metrics: undefined }) : undefined;
  return (request, info) => {
    const target = rawTarget(request.url);
    if (
      builtInPaths.has(target.path) && (request.method === "GET" || request.method === "HEAD")
    ) {
      if (!observe) return builtIn.fetch(request, info);
      const started = performance.now();
      return Promise.resolve(builtIn.fetch(request, info)).then((response) => {
        observe(request, info, undefined, response, started);
        return response;
      });
    }
    try {
      const response = wagi(request, info, target);
      return response instanceof Response ? response : response.catch(failed);
    } catch (error) {
      return failed(error as Error);
    }
  };
}

/** What reading a request throws when its client has gone away. */
const CLIENT_GONE = [
  Deno.errors.BadResource,
  Deno.errors.ConnectionReset,
  Deno.errors.ConnectionAborted,
  Deno.errors.BrokenPipe,
  Deno.errors.UnexpectedEof,
  Deno.errors.Interrupted,
];

/** Fetches what the other server isolates of the process counted so far. */
export type PeerMetrics = () => Promise<MetricsSnapshot[]>;

/** The scrape: every metric in the Prometheus text format, every server isolate's included. */
async function metricsResponse(metrics: Metrics, peers?: PeerMetrics): Promise<Response> {
  const others = peers ? await peers() : [];
  return new Response(metrics.render(others), {
    headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
  });
}

/** A handler that serves `/metrics` alone, for a listener of its own. */
export function metricsHandler(
  metrics: Metrics,
  peers?: PeerMetrics,
): (request: Request) => Response | Promise<Response> {
  const app = new Hono();
  app.get("/metrics", () => metricsResponse(metrics, peers));
  return (request) => app.fetch(request);
}

/** The routing table as `/_wagi/routes` lists it: no host paths, only what a caller may see. */
export function routeListing(handlers: readonly RouteHandler[]) {
  return handlers.map((h) => ({
    route: h.pattern.text,
    matchedRoute: h.matchedRoute,
    module: h.entry.module,
    entrypoint: h.entrypoint,
    timeoutMs: h.timeoutMs,
    volumes: h.entry.volumes.map((v) => v.guestPath),
  }));
}
