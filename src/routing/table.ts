/**
 * The routing table: every handler in match order, first match wins. A reload replaces the
 * handlers at once; a request keeps the handler its lookup found.
 * @module
 */

import { matchRoute, type RouteMatch, type RoutePattern } from "./route.ts";

/** A routable handler: a pattern and whatever the server needs to run it. */
export interface Routed {
  readonly pattern: RoutePattern;
}

/** Ordered handlers; `lookup` returns the first whose pattern matches. */
export class RoutingTable<H extends Routed> {
  #handlers: readonly H[];

  constructor(handlers: readonly H[]) {
    this.#handlers = handlers;
  }

  /** The handlers in match order, as served now. */
  get handlers(): readonly H[] {
    return this.#handlers;
  }

  /** Serves `handlers` from the next lookup on (a configuration reload). */
  replace(handlers: readonly H[]): void {
    this.#handlers = handlers;
  }

  /** The first handler matching the raw path, with what the match tells CGI. */
  lookup(rawPath: string): { handler: H; match: RouteMatch } | undefined {
    for (const handler of this.#handlers) {
      const match = matchRoute(handler.pattern, rawPath);
      if (match) return { handler, match };
    }
    return undefined;
  }
}
