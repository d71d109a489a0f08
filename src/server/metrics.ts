/**
 * The server's metrics in the Prometheus text format: per-route request counts by status class
 * and a latency histogram, answers the server gave itself (413, 408, 504), and gauges read at
 * scrape time. Recording a request costs a few array increments: every series is allocated
 * when the app is made, none per request.
 * @module
 */

/** Upper bounds of the latency histogram's buckets, in seconds (Prometheus' unit). */
export const LATENCY_BUCKETS_S = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
];

/** How the values of one metric in several isolates make the process's one. */
export type Merge = "sum" | "max" | "min";

/**
 * A gauge read when scraped: its name, help text and current value, and how the values of
 * several server isolates make the process's one (default: added up).
 */
export interface Gauge {
  name: string;
  help: string;
  value(): number;
  /** `max` for a value of the whole process (each isolate reads the same), `min` for a flag. */
  merge?: Merge;
}

/**
 * What one server isolate counted, as plain data: a scrape answered by any isolate adds up
 * every isolate's (see {@link Metrics.render}).
 */
export interface MetricsSnapshot {
  /** Which server isolate counted this (0: the first). */
  isolate: number;
  /** Route labels by series index; index 0 is `(none)`. */
  routes: string[];
  byClass: Float64Array;
  buckets: Float64Array;
  sums: Float64Array;
  guestSeconds: Float64Array;
  counters: [name: string, help: string, value: number, merge: Merge][];
  gauges: [name: string, help: string, value: number, merge: Merge][];
}

/** Where requests no route matched are counted. */
const NO_ROUTE = 0;

/** Counters of what the server did, per route; rendered on demand. */
export class Metrics {
  /** Labels by series index; index 0 is `(none)`. A route's series outlive reloads. */
  readonly #routes: string[] = ["(none)"];
  readonly #seriesOf = new Map<string, number>();
  /** Series index by route key, for the routes served now and those served before. */
  #index = new Map<unknown, number>();
  #previous = new Map<unknown, number>();
  /** Requests by route and status class (1xx … 5xx): five per route. */
  #byClass = new Float64Array(0);
  /** Histogram counts by route: one per bucket plus +Inf. */
  #buckets = new Float64Array(0);
  #sums = new Float64Array(0);
  /** Seconds guests ran, by route (from the run's start to its end, waits included). */
  #guestSeconds = new Float64Array(0);
  readonly #counters = new Map<
    string,
    { help: string; value: number; merge: "sum" | "max" }
  >();
  readonly #gauges: Gauge[] = [];
  /** Which server isolate this is (0: the first, or the only one). */
  isolate = 0;

  /**
   * `routes` pairs each route's key (what {@link record} is given) with its label; requests
   * no route matched are counted under the label `(none)`.
   */
  constructor(routes: readonly (readonly [unknown, string])[]) {
    this.useRoutes(routes);
  }

  /**
   * Counts the routes of a new configuration from now on. A label seen before keeps its
   * series (counters never go back); the keys of the configuration before are still counted,
   * for the requests that started on it.
   */
  useRoutes(routes: readonly (readonly [unknown, string])[]): void {
    const index = new Map<unknown, number>();
    for (const [key, label] of routes) {
      let series = this.#seriesOf.get(label);
      if (series === undefined) {
        series = this.#routes.length;
        this.#routes.push(label);
        this.#seriesOf.set(label, series);
      }
      index.set(key, series);
    }
    this.#previous = this.#index;
    this.#index = index;
    const grow = (array: Float64Array<ArrayBuffer>, width: number) => {
      if (array.length >= this.#routes.length * width) return array;
      const grown = new Float64Array(this.#routes.length * width);
      grown.set(array);
      return grown;
    };
    this.#byClass = grow(this.#byClass, 5);
    this.#buckets = grow(this.#buckets, LATENCY_BUCKETS_S.length + 1);
    this.#sums = grow(this.#sums, 1);
    this.#guestSeconds = grow(this.#guestSeconds, 1);
  }

  #seriesFor(route: unknown): number {
    return this.#index.get(route) ?? this.#previous.get(route) ?? NO_ROUTE;
  }

  /** Adds the time a run of `route`'s module took, in seconds. */
  guestTime(route: unknown, seconds: number): void {
    this.#guestSeconds[this.#seriesFor(route)] += seconds;
  }

  /** Counts a response of `status` to a request for `route` that took `seconds`. */
  record(route: unknown, status: number, seconds: number): void {
    const i = this.#seriesFor(route);
    const statusClass = Math.min(Math.max(Math.floor(status / 100), 1), 5) - 1;
    this.#byClass[i * 5 + statusClass]++;
    let bucket = 0;
    while (bucket < LATENCY_BUCKETS_S.length && seconds > LATENCY_BUCKETS_S[bucket]) bucket++;
    this.#buckets[i * (LATENCY_BUCKETS_S.length + 1) + bucket]++;
    this.#sums[i] += seconds;
  }

  /**
   * A counter the server increments itself (`count`); declared once, by name. `max`: each
   * server isolate counts the same events (a reload), so the process's count is the largest.
   */
  counter(name: string, help: string, merge: "sum" | "max" = "sum"): () => void {
    const entry = { help, value: 0, merge };
    this.#counters.set(name, entry);
    return () => void entry.value++;
  }

  /** Adds gauges read at every scrape. */
  gauge(...gauges: Gauge[]): void {
    this.#gauges.push(...gauges);
  }

  /** What this isolate counted so far, for a scrape another isolate answers. */
  snapshot(): MetricsSnapshot {
    return {
      isolate: this.isolate,
      routes: [...this.#routes],
      byClass: this.#byClass.slice(),
      buckets: this.#buckets.slice(),
      sums: this.#sums.slice(),
      guestSeconds: this.#guestSeconds.slice(),
      counters: [...this.#counters].map(([name, { help, value, merge }]) => [
        name,
        help,
        value,
        merge,
      ]),
      gauges: this.#gauges.map((g) => [g.name, g.help, g.value(), g.merge ?? "sum"]),
    };
  }

  /**
   * Everything, in the Prometheus text exposition format (version 0.0.4): this isolate's
   * counts added to those of `others` (the process's other server isolates).
   */
  render(others: readonly MetricsSnapshot[] = []): string {
    const all = [this.snapshot(), ...others];
    const width = LATENCY_BUCKETS_S.length + 1;
    // Series by label across isolates: in the order this isolate first served them.
    const routes = ["(none)"];
    const seriesOf = new Map([["(none)", NO_ROUTE]]);
    const mapped = all.map((snapshot) =>
      snapshot.routes.map((route) => {
        let series = seriesOf.get(route);
        if (series === undefined) {
          series = routes.length;
          routes.push(route);
          seriesOf.set(route, series);
        }
        return series;
      })
    );
    const byClass = new Float64Array(routes.length * 5);
    const buckets = new Float64Array(routes.length * width);
    const sums = new Float64Array(routes.length);
    const guestSeconds = new Float64Array(routes.length);
    all.forEach((snapshot, s) => {
      mapped[s].forEach((to, from) => {
        for (let c = 0; c < 5; c++) byClass[to * 5 + c] += snapshot.byClass[from * 5 + c] ?? 0;
        for (let b = 0; b < width; b++) {
          buckets[to * width + b] += snapshot.buckets[from * width + b] ?? 0;
        }
        sums[to] += snapshot.sums[from] ?? 0;
        guestSeconds[to] += snapshot.guestSeconds[from] ?? 0;
      });
    });

    const lines: string[] = [];
    // Routes in the order they were first served, then the requests no route matched.
    const order = [...routes.keys()].slice(1);
    order.push(NO_ROUTE);
    const label = (value: string) =>
      value.replace(/[\\"\n]/g, (c) => c === "\n" ? "\\n" : `\\${c}`);
    lines.push(
      "# HELP wagi_requests_total Requests answered, by route and status class.",
      "# TYPE wagi_requests_total counter",
    );
    order.forEach((i) => {
      const route = routes[i];
      for (let c = 0; c < 5; c++) {
        const count = byClass[i * 5 + c];
        if (count > 0) {
          lines.push(`wagi_requests_total{route="${label(route)}",code="${c + 1}xx"} ${count}`);
        }
      }
    });
    lines.push(
      "# HELP wagi_request_duration_seconds Time to the response's headers, by route.",
      "# TYPE wagi_request_duration_seconds histogram",
    );
    order.forEach((i) => {
      const route = routes[i];
      let cumulative = 0;
      for (let b = 0; b < width; b++) cumulative += buckets[i * width + b];
      if (cumulative === 0) return;
      const name = label(route);
      let running = 0;
      for (let b = 0; b < width; b++) {
        running += buckets[i * width + b];
        const le = b < LATENCY_BUCKETS_S.length ? String(LATENCY_BUCKETS_S[b]) : "+Inf";
        lines.push(`wagi_request_duration_seconds_bucket{route="${name}",le="${le}"} ${running}`);
      }
      lines.push(`wagi_request_duration_seconds_sum{route="${name}"} ${sums[i]}`);
      lines.push(`wagi_request_duration_seconds_count{route="${name}"} ${cumulative}`);
    });
    lines.push(
      "# HELP wagi_guest_seconds_total Time guests ran, by route (waits included).",
      "# TYPE wagi_guest_seconds_total counter",
    );
    order.forEach((i) => {
      if (guestSeconds[i] > 0) {
        lines.push(`wagi_guest_seconds_total{route="${label(routes[i])}"} ${guestSeconds[i]}`);
      }
    });
    lines.push(
      "# HELP wagi_server_requests_total Requests answered, by server isolate (see --servers).",
      "# TYPE wagi_server_requests_total counter",
    );
    for (const snapshot of [...all].sort((a, b) => a.isolate - b.isolate)) {
      const count = snapshot.byClass.reduce((sum, n) => sum + n, 0);
      lines.push(`wagi_server_requests_total{isolate="${snapshot.isolate}"} ${count}`);
    }
    for (const type of ["counter", "gauge"] as const) {
      const series = merged(all.flatMap((s) => type === "counter" ? s.counters : s.gauges));
      for (const [name, { help, value }] of series) {
        lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
      }
    }
    return lines.join("\n") + "\n";
  }
}

/** Values declared by name in several isolates, each name's made one as it says. */
function merged(
  entries: readonly (readonly [name: string, help: string, value: number, merge: Merge])[],
): Map<string, { help: string; value: number }> {
  const byName = new Map<string, { help: string; value: number }>();
  for (const [name, help, value, merge] of entries) {
    const known = byName.get(name);
    if (!known) byName.set(name, { help, value });
    else if (merge === "max") known.value = Math.max(known.value, value);
    else if (merge === "min") known.value = Math.min(known.value, value);
    else known.value += value;
  }
  return byName;
}
