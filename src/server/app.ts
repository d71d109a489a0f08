/**
 * The Hono app: `/healthz`, then the WAGI routing table; each request becomes a guest run
 * through the executor, streamed both ways, and the module's output becomes the response.
 * @module
 */

import { Hono } from "hono";
import { authorityOf, cgiArgv, cgiEnvironment, type HostPort, rawTarget } from "../cgi/request.ts";
import type { Executor } from "../executor/executor.ts";
import type { RoutingTable } from "../routing/table.ts";
import type { BodyCaps } from "../config/limits.ts";
import type { RouteHandler } from "./handlers.ts";
import type { ModuleLog } from "./module_log.ts";
import type { Logger } from "./logger.ts";
import { failureReason, respond, text } from "./respond.ts";
import { withKnownLength } from "./request_body.ts";

/** What the platform shell passes along with each request. */
export type AppBindings = { Bindings: { remoteAddr: string } };

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
}

/** Builds the app. */
export function createApp(options: AppOptions): Hono<AppBindings> {
  const { table, executor, moduleLog, logger, caps } = options;
  const app = new Hono<AppBindings>();

  // The built-in health check wins over any user route (spec §3). While the server drains,
  // the lifecycle answers every request, this one included, with 503.
  app.get("/healthz", () => text("OK", 200));

  app.all("*", async (c) => {
    const request = c.req.raw;
    const target = rawTarget(request.url);
    const found = table.lookup(target.path);
    if (!found) return text("Not Found\n", 404);
    const { handler, match } = found;
    const declared = request.headers.get("content-length");
    if (declared !== null && Number(declared) > caps.maxBodyBytes) {
      return text("Payload Too Large\n", 413);
    }
    const body = await withKnownLength(request, caps.maxBodyBytes);
    if (body === "too large") return text("Payload Too Large\n", 413);
    const env = cgiEnvironment(
      {
        method: request.method,
        target,
        headers: request.headers,
        remoteAddr: c.env?.remoteAddr ?? "",
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
    const execution = executor.run({
      module: handler.module,
      entrypoint: handler.entrypoint,
      args: cgiArgv(target, handler.entry.argv),
      env,
      preopens: handler.entry.volumes,
      stdin: body.stream,
      timeoutMs: handler.timeoutMs,
      maxStdin: caps.maxBodyBytes,
      maxOutput: caps.maxResponseBytes,
      outbound: handler.outbound,
      group: handler.matchedRoute,
    });
    const where =
      `${request.method} ${target.path} → ${handler.entry.module}#${handler.entrypoint}`;
    // Until the response is returned, a client that goes away stops the guest; afterwards the
    // response body's own cancellation does (and Deno aborts the signal on success too).
    const cancel = () => execution.cancel();
    request.signal.addEventListener("abort", cancel, { once: true });
    execution.done.then(async (outcome) => {
      await moduleLog.append(handler.logKey, outcome.stderr);
      if (failureReason(outcome) !== undefined && outcome.stderr.length > 0) {
        logger.error(`${where}: the module's stderr is in ${moduleLog.fileFor(handler.logKey)}`);
      }
    }).catch((error) => logger.error(`${where}: cannot write the stderr log: ${error.message}`));
    try {
      return await respond(execution, where, logger, caps.maxResponseBytes);
    } finally {
      request.signal.removeEventListener("abort", cancel);
    }
  });

  app.onError((error) => {
    logger.error(`unhandled: ${error.stack ?? error.message}`);
    return text("Internal Server Error\n", 500);
  });
  return app;
}
