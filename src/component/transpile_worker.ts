/**
 * A worker that transpiles one component and ends: jco's code generator is a large WebAssembly
 * module that, once loaded, stays in memory for as long as the isolate that loaded it (~130 MiB
 * measured); in a worker of its own it goes when the worker does. See transpile.ts.
 * @module
 */

/// <reference lib="deno.worker" />

import { transpileComponent } from "./transpile.ts";

self.onmessage = async (event: MessageEvent<Uint8Array>) => {
  try {
    const transpiled = await transpileComponent(event.data);
    // Handed over, not copied (several cores may share one buffer).
    const buffers = new Set(transpiled.cores.map(([, bytes]) => bytes.buffer as ArrayBuffer));
    self.postMessage({ transpiled }, [...buffers]);
  } catch (error) {
    self.postMessage({ error: (error as Error).message ?? String(error) });
  }
};
