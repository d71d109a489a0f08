/**
 * The routing table: every handler in match order, first match wins.
 * @module
 */

import { matchRoute, type RouteMatch, type RoutePattern } from "./route.ts";

/** A routable handler: a pattern and whatever the server needs to run it. */
export interface Routed {
  readonly pattern: RoutePattern;
}

/** Ordered handlers; `lookup` returns the first whose pattern matches. */
export class RoutingTable<H extends Routed> {
  constructor(readonly handlers: readonly H[]) {}

  /** The first handler matching the raw path, with what the match tells CGI. */
  lookup(rawPath: string): { handler: H; match: RouteMatch } | undefined {
    for (const handler of this.handlers) {
      const match = matchRoute(handler.pattern, rawPath);
      if (match) return { handler, match };
    }
    return undefined;
  }
}
