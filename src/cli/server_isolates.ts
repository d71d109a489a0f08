/**
 * Several server isolates on one port (`--servers`). The process's main isolate loads the
 * configuration and listens first; then it starts the others as workers. Each loads the same
 * configuration (its derived modules read back from the module cache), runs modules on its own
 * thread with its own share of the pool, and listens on the same port with SO_REUSEPORT, so the
 * kernel spreads connections over them. The main isolate stays the one server the outside
 * sees: a stop and a reload reach every isolate, and `/metrics`, whichever isolate answers it,
 * adds up all of them.
 * @module
 */

import type { Logger } from "../server/logger.ts";
import type { MetricsSnapshot } from "../server/metrics.ts";
import type { ServeOptions } from "./serve_options.ts";
import { roomForThread } from "../open_files.ts";

/**
 * The worker script. In a bundle of the server (see deno.json) this code is in a chunk at the
 * bundle's root, and the worker's entry keeps its place under `cli/`.
 */
const SERVER_ISOLATE_URL = import.meta.url.endsWith(".js")
  ? new URL("./cli/server_isolate.js", import.meta.url).href
  : new URL("./server_isolate.ts", import.meta.url).href;

/** How long a scrape waits for an isolate's counts before leaving it out. */
const SNAPSHOT_TIMEOUT_MS = 1000;

/**
 * How long after the main isolate is ready the others start: creating a worker holds the
 * creating thread for tens of milliseconds (and its start takes CPU), which the first requests
 * after a cold start, Knative's scale from zero, should not wait behind.
 */
export const START_AFTER_MS = 500;

/** How often an isolate that could not start (no descriptors to spare) is tried again. */
const ROOM_RETRY_MS = 1000;

/** After the drain timeout, how long an isolate may take to say it stopped before it is ended. */
const STOP_GRACE_MS = 3000;

/** What the main isolate tells another. */
export type ToIsolate =
  | { type: "start"; index: number; options: ServeOptions }
  | { type: "snapshot"; id: number }
  | { type: "gathered"; id: number; snapshots: MetricsSnapshot[] }
  | { type: "reload"; why: string }
  | { type: "stop" }
  /** Answer "stopped" at once: an image build loads the script so that Deno keeps its code. */
  | { type: "warm" };

/** What an isolate tells the main one. */
export type FromIsolate =
  | { type: "ready" }
  | { type: "failed"; message: string }
  | { type: "snapshot"; id: number; snapshot?: MetricsSnapshot }
  | { type: "gather"; id: number }
  | { type: "stopped" };

/**
 * Whether this process may listen with SO_REUSEPORT: Linux, with Deno's `--unstable-net`. The
 * flag is told by the API it adds (`Deno.listenDatagram`), not by trying `reusePort`: without
 * the flag that ends the process instead of throwing.
 */
export function canSharePort(): boolean {
  return Deno.build.os === "linux" &&
    typeof (Deno as { listenDatagram?: unknown }).listenDatagram === "function";
}

/** `--workers` and `--max-concurrency` are the process's: each isolate's pool has its share. */
export function shareOf(total: number, servers: number): number {
  return Math.max(1, Math.ceil(total / servers));
}

/** Loads the server isolate's script in a worker and ends it (see cli/warm_up.ts). */
export function warmUpServerIsolate(): Promise<void> {
  if (!roomForThread()) return Promise.reject(new Error("no descriptors to spare for a thread"));
  const worker = new Worker(SERVER_ISOLATE_URL, { type: "module" });
  return new Promise<void>((resolve, reject) => {
    worker.onmessage = () => resolve();
    worker.onerror = (event) => {
      event.preventDefault();
      reject(new Error(event.message));
    };
    worker.postMessage({ type: "warm" } satisfies ToIsolate);
  }).finally(() => worker.terminate());
}

/**
 * Calls `then` in `ms` (unless cancelled first) without a timer: a process's first `setTimeout`
 * holds its thread ~13 ms here (the runtime loads its timers then), and a cold start's first
 * requests would wait behind it. The wait does not keep the process alive: the listener does.
 */
function after(ms: number, then: () => void): () => void {
  const word = new Int32Array(new SharedArrayBuffer(4));
  let cancelled = false;
  Promise.resolve(Atomics.waitAsync(word, 0, 0, ms).value).then(() => {
    if (!cancelled) then();
  });
  return () => {
    cancelled = true;
    Atomics.notify(word, 0);
  };
}

/** One isolate started by the main one. */
interface Isolate {
  index: number;
  worker: Worker;
  ready: boolean;
  /** Resolves once it stopped (or failed, or was ended). */
  gone: Promise<void>;
  markGone: () => void;
}

/** The isolates the main one started, and how it speaks to them. */
export class ServerIsolates {
  readonly #isolates: Isolate[] = [];
  readonly #pending = new Map<number, (snapshot?: MetricsSnapshot) => void>();
  #nextId = 0;
  #stopping = false;
  readonly #cancelStart: () => void;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #saidNoRoom = false;

  /**
   * Starts `count` isolates serving `options` on `port`, {@link START_AFTER_MS} from now.
   * `ownSnapshot` is the main isolate's counts (for a scrape another isolate answers);
   * `onAllReady` is told how many listen once each has listened or failed.
   */
  constructor(
    count: number,
    options: ServeOptions,
    port: number,
    readonly logger: Logger,
    readonly ownSnapshot: () => MetricsSnapshot | undefined,
    onAllReady: (listening: number) => void,
    startAfterMs = START_AFTER_MS,
  ) {
    this.#cancelStart = after(startAfterMs, () => this.#start(count, options, port, onAllReady));
  }

  #start(
    count: number,
    options: ServeOptions,
    port: number,
    onAllReady: (listening: number) => void,
  ): void {
    let waiting = count;
    const settled = () => {
      if (--waiting === 0) onAllReady(this.#isolates.filter((i) => i.ready).length);
    };
    for (let index = 1; index <= count; index++) this.#startOne(index, options, port, settled);
  }

  /**
   * Starts isolate `index`, once the process has descriptors to spare for its thread (a start
   * without them would abort the process: see open_files.ts); `settled` is told once it
   * listens, fails, or is not started because the server stops.
   */
  #startOne(index: number, options: ServeOptions, port: number, settled: () => void): void {
    if (this.#stopping) return settled();
    if (!roomForThread()) {
      if (!this.#saidNoRoom) {
        this.#saidNoRoom = true;
        this.logger.warn(
          `server isolate ${index} waits to start: the process has almost no descriptors left`,
        );
      }
      this.#retry = setTimeout(
        () => this.#startOne(index, options, port, settled),
        ROOM_RETRY_MS,
      );
      return;
    }
    const logger = this.logger;
    const worker = new Worker(SERVER_ISOLATE_URL, { type: "module" });
    let markGone = () => {};
    const gone = new Promise<void>((resolve) => (markGone = resolve));
    const isolate: Isolate = { index, worker, ready: false, gone, markGone };
    let started = false;
    const start = () => {
      if (started) return;
      started = true;
      settled();
    };
    worker.onmessage = (event: MessageEvent<FromIsolate>) => {
      const message = event.data;
      if (message.type === "ready") {
        isolate.ready = true;
        // Stopped while it started: it stops too.
        if (this.#stopping) worker.postMessage({ type: "stop" } satisfies ToIsolate);
        start();
      } else if (message.type === "failed") {
        logger.error(
          `server isolate ${index} ${isolate.ready ? "stopped" : "did not start"}: ` +
            message.message,
        );
        this.#end(isolate);
        start();
      } else if (message.type === "snapshot") {
        this.#pending.get(message.id)?.(message.snapshot);
      } else if (message.type === "gather") {
        this.#gather(index).then((snapshots) =>
          worker.postMessage({ type: "gathered", id: message.id, snapshots } satisfies ToIsolate)
        );
      } else if (message.type === "stopped") {
        this.#end(isolate);
      }
    };
    worker.onerror = (event) => {
      // An isolate's failure is its own: the others keep serving.
      event.preventDefault();
      logger.error(`server isolate ${index} failed: ${event.message}; the others keep serving`);
      this.#end(isolate);
      start();
    };
    this.#isolates.push(isolate);
    const given: ServeOptions = { ...options, listen: { ...options.listen, port } };
    worker.postMessage({ type: "start", index, options: given } satisfies ToIsolate);
  }

  #end(isolate: Isolate): void {
    isolate.ready = false;
    isolate.worker.terminate();
    isolate.markGone();
  }

  /** What every isolate but `except` counted so far, the main one's included. */
  async #gather(except: number): Promise<MetricsSnapshot[]> {
    const own = this.ownSnapshot();
    const others = await this.snapshots(except);
    return own ? [own, ...others] : others;
  }

  /** What the started isolates (but `except`) counted so far; one that does not answer is left out. */
  async snapshots(except?: number): Promise<MetricsSnapshot[]> {
    const asked = this.#isolates.filter((i) => i.ready && i.index !== except).map((isolate) => {
      const id = this.#nextId++;
      return new Promise<MetricsSnapshot | undefined>((resolve) => {
        const timer = setTimeout(() => done(undefined), SNAPSHOT_TIMEOUT_MS);
        const done = (snapshot?: MetricsSnapshot) => {
          clearTimeout(timer);
          this.#pending.delete(id);
          resolve(snapshot);
        };
        this.#pending.set(id, done);
        isolate.worker.postMessage({ type: "snapshot", id } satisfies ToIsolate);
      });
    });
    return (await Promise.all(asked)).filter((s): s is MetricsSnapshot => s !== undefined);
  }

  /** Reloads every started isolate's configuration (after the main one switched). */
  reload(why: string): void {
    for (const isolate of this.#isolates) {
      if (isolate.ready) isolate.worker.postMessage({ type: "reload", why } satisfies ToIsolate);
    }
  }

  /**
   * Stops every isolate as the main one stops (each drains its own requests); resolves once all
   * have stopped, or were ended `drainTimeoutMs` plus a grace period later.
   */
  stop(drainTimeoutMs: number): Promise<void> {
    this.#stopping = true;
    // Not started yet: they never will be.
    this.#cancelStart();
    clearTimeout(this.#retry);
    for (const isolate of this.#isolates) {
      isolate.worker.postMessage({ type: "stop" } satisfies ToIsolate);
    }
    const all = Promise.all(this.#isolates.map((i) => i.gone)).then(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        for (const isolate of this.#isolates) this.#end(isolate);
        resolve();
      }, drainTimeoutMs + STOP_GRACE_MS);
    });
    return Promise.race([all, deadline]).finally(() => clearTimeout(timer));
  }
}

/** How an isolate started by the main one speaks to it (the worker side of the above). */
export class MainIsolateLink {
  readonly #pending = new Map<number, (snapshots: MetricsSnapshot[]) => void>();
  #nextId = 0;
  #onReload: (why: string) => void = () => {};
  #onStop: () => void = () => {};
  #stopRequested = false;
  /** This isolate's counts, when it has metrics. */
  snapshot: () => MetricsSnapshot | undefined = () => undefined;

  constructor(readonly index: number, readonly post: (message: FromIsolate) => void) {}

  /** Handles a message from the main isolate (all but `start`). */
  receive(message: ToIsolate): void {
    if (message.type === "snapshot") {
      this.post({ type: "snapshot", id: message.id, snapshot: this.snapshot() });
    } else if (message.type === "gathered") {
      this.#pending.get(message.id)?.(message.snapshots);
    } else if (message.type === "reload") {
      this.#onReload(message.why);
    } else if (message.type === "stop") {
      this.#stopRequested = true;
      this.#onStop();
    }
  }

  /** What every other isolate counted so far, for a scrape this one answers. */
  peerMetrics = (): Promise<MetricsSnapshot[]> => {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      // The main isolate bounds each isolate's answer: this only guards against its loss.
      const done = (snapshots: MetricsSnapshot[]) => {
        clearTimeout(timer);
        this.#pending.delete(id);
        resolve(snapshots);
      };
      const timer = setTimeout(() => done([]), 2 * SNAPSHOT_TIMEOUT_MS + 500);
      this.#pending.set(id, done);
      this.post({ type: "gather", id });
    });
  };

  /** Reloads when the main isolate did. */
  onReload(reload: (why: string) => void): void {
    this.#onReload = reload;
  }

  /** Stops when the main isolate stops (at once if it already asked). */
  onStop(stop: () => void): void {
    this.#onStop = stop;
    if (this.#stopRequested) stop();
  }
}
