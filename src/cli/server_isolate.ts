/**
 * A server isolate started by the main one (`--servers`, see server_isolates.ts): serves the
 * configuration it is given on the shared port until the main isolate stops it.
 * @module
 */

/// <reference lib="deno.worker" />

import { serve } from "./serve.ts";
import { type FromIsolate, MainIsolateLink, type ToIsolate } from "./server_isolates.ts";
import { stderrLogger } from "../server/logger.ts";

const post = (message: FromIsolate) => self.postMessage(message);
let link: MainIsolateLink | undefined;

self.onmessage = (event: MessageEvent<ToIsolate>) => {
  const message = event.data;
  if (message.type === "warm") return post({ type: "stopped" });
  if (message.type !== "start") return link?.receive(message);
  link = new MainIsolateLink(message.index, post);
  serve(message.options, stderrLogger, link).then(
    () => post({ type: "stopped" }),
    (error: Error) => post({ type: "failed", message: error.message }),
  );
};
