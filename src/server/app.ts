/**
 * The Hono app: `/healthz`, then the WAGI routing table; each request becomes a CGI run
 * through the executor, and the module's output becomes the response.
 * @module
 */

import { Hono } from "hono";
import { authorityOf, cgiArgv, cgiEnvironment, type HostPort, rawTarget } from "../cgi/request.ts";
import { parseCgiOutput } from "../cgi/response.ts";
import type { Executor } from "../executor/executor.ts";
import type { RoutingTable } from "../routing/table.ts";
import type { RouteHandler } from "./handlers.ts";
import type { ModuleLog } from "./module_log.ts";
import type { Logger } from "./logger.ts";

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
  /** True once shutdown has begun: `/healthz` then answers 503. */
  draining?: () => boolean;
}

const text = (body: string, status: number) =>
  new Response(body, { status, headers: { "content-type": "text/plain;charset=UTF-8" } });

/** Builds the app. */
export function createApp(options: AppOptions): Hono<AppBindings> {
  const { table, executor, moduleLog, logger } = options;
  const app = new Hono<AppBindings>();

  // The built-in health check wins over any user route (spec §3).
  app.get("/healthz", () => options.draining?.() ? text("Draining\n", 503) : text("OK", 200));

  app.all("*", async (c) => {
    const request = c.req.raw;
    const target = rawTarget(request.url);
    const found = table.lookup(target.path);
    if (!found) return text("Not Found\n", 404);
    const { handler, match } = found;
    const body = new Uint8Array(await request.arrayBuffer());
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
    const result = await executor.run({
      module: handler.module,
      entrypoint: handler.entrypoint,
      args: cgiArgv(target, handler.entry.argv),
      env,
      stdin: body,
      preopens: handler.preopens,
    });
    await moduleLog.append(handler.logKey, result.stderr).catch((error) =>
      logger.error(`cannot write the stderr log of ${handler.matchedRoute}: ${error.message}`)
    );
    const where =
      `${request.method} ${target.path} → ${handler.entry.module}#${handler.entrypoint}`;
    if (result.failure !== undefined) {
      logger.error(`${where}: ${result.failure}`);
      return text("Internal Server Error\n", 500);
    }
    if (result.exitCode !== 0) {
      logger.error(
        `${where}: exited with code ${result.exitCode} (stderr in ${
          moduleLog.fileFor(handler.logKey)
        })`,
      );
      return text("Internal Server Error\n", 500);
    }
    const output = parseCgiOutput(result.stdout);
    for (const warning of output.warnings) logger.warn(`${where}: ${warning}`);
    return output.response;
  });

  app.onError((error) => {
    logger.error(`unhandled: ${error.stack ?? error.message}`);
    return text("Internal Server Error\n", 500);
  });
  return app;
}
