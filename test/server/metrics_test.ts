import { assertEquals, assertIncludes, assertOk } from "../_assert.ts";
import { LATENCY_BUCKETS_S, Metrics } from "../../src/server/metrics.ts";

Deno.test("metrics: the histogram is cumulative, with +Inf, sum and count per route", () => {
  const route = {};
  const metrics = new Metrics([[route, "/a"]]);
  metrics.record(route, 200, 0.0004);
  metrics.record(route, 200, 0.003);
  metrics.record(route, 503, 100);
  const text = metrics.render();
  assertIncludes(text, 'wagi_request_duration_seconds_bucket{route="/a",le="0.0005"} 1\n');
  assertIncludes(text, 'wagi_request_duration_seconds_bucket{route="/a",le="0.005"} 2\n');
  assertIncludes(
    text,
    `wagi_request_duration_seconds_bucket{route="/a",le="${LATENCY_BUCKETS_S.at(-1)}"} 2\n`,
  );
  assertIncludes(text, 'wagi_request_duration_seconds_bucket{route="/a",le="+Inf"} 3\n');
  assertIncludes(text, 'wagi_request_duration_seconds_count{route="/a"} 3\n');
  assertIncludes(text, 'wagi_requests_total{route="/a",code="5xx"} 1\n');
});

Deno.test("metrics: labels are escaped, counters and gauges are rendered with help and type", () => {
  const route = {};
  const metrics = new Metrics([[route, '/q"uote\\d']]);
  metrics.record(route, 204, 0.001);
  const count = metrics.counter("wagi_things_total", "Things.");
  count();
  count();
  metrics.gauge({ name: "wagi_level", help: "A level.", value: () => 7 });
  const text = metrics.render();
  assertIncludes(text, 'wagi_requests_total{route="/q\\"uote\\\\d",code="2xx"} 1\n');
  assertIncludes(text, "# TYPE wagi_things_total counter\nwagi_things_total 2\n");
  assertIncludes(text, "# HELP wagi_level A level.\n# TYPE wagi_level gauge\nwagi_level 7\n");
  // Routes without requests have no series.
  assertEquals(new Metrics([[{}, "/idle"]]).render().includes("/idle"), false);
});

Deno.test("metrics: guest time adds up per route, and a route that ran no guest has no series", () => {
  const a = {};
  const metrics = new Metrics([[a, "/a"], [{}, "/b"]]);
  metrics.guestTime(a, 0.25);
  metrics.guestTime(a, 0.5);
  const text = metrics.render();
  assertIncludes(
    text,
    '# TYPE wagi_guest_seconds_total counter\nwagi_guest_seconds_total{route="/a"} 0.75\n',
  );
  assertEquals(text.includes('wagi_guest_seconds_total{route="/b"}'), false);
});

Deno.test("metrics: after a reload a route keeps its counts, new routes get series, old keys still count", () => {
  const before = {};
  const metrics = new Metrics([[before, "/a"]]);
  metrics.record(before, 200, 0.001);
  const after = {};
  const added = {};
  metrics.useRoutes([[after, "/a"], [added, "/b"]]);
  metrics.record(after, 200, 0.001);
  // A request that started on the configuration before ends after the reload.
  metrics.record(before, 500, 0.001);
  metrics.record(added, 404, 0.001);
  metrics.record(undefined, 404, 0.001);
  const text = metrics.render();
  assertIncludes(text, 'wagi_requests_total{route="/a",code="2xx"} 2\n');
  assertIncludes(text, 'wagi_requests_total{route="/a",code="5xx"} 1\n');
  assertIncludes(text, 'wagi_requests_total{route="/b",code="4xx"} 1\n');
  assertIncludes(text, 'wagi_requests_total{route="(none)",code="4xx"} 1\n');
  // Routes first, in the order they were first served; the unmatched last.
  assertOk(text.indexOf('route="/b"') < text.indexOf('route="(none)"'));
});

Deno.test("metrics: a scrape adds up the other isolates' snapshots, by route label and by how each merges", () => {
  const make = (isolate: number, routes: [unknown, string][], rss: number, ok: number) => {
    const metrics = new Metrics(routes);
    metrics.isolate = isolate;
    const reload = metrics.counter("wagi_reloads_total", "Reloads.", "max");
    const timeout = metrics.counter("wagi_timeouts_total", "Timeouts.");
    metrics.gauge(
      { name: "in_flight", help: "In flight.", value: () => isolate + 1 },
      { name: "rss", help: "Memory.", value: () => rss, merge: "max" },
      { name: "ok", help: "Flag.", value: () => ok, merge: "min" },
    );
    return { metrics, reload, timeout };
  };
  const [a, b] = [{}, {}];
  const first = make(0, [[a, "/a"]], 100, 1);
  // The other isolate has its own keys, and its routes in another order.
  const second = make(1, [[b, "/b"], [a, "/a"]], 100, 0);
  first.metrics.record(a, 200, 0.001);
  second.metrics.record(a, 200, 0.001);
  second.metrics.record(a, 404, 0.001);
  second.metrics.record(b, 200, 0.001);
  first.reload();
  second.reload();
  first.timeout();
  second.timeout();
  second.metrics.guestTime(b, 0.5);
  const text = first.metrics.render([second.metrics.snapshot()]);
  assertIncludes(text, 'wagi_requests_total{route="/a",code="2xx"} 2\n');
  assertIncludes(text, 'wagi_requests_total{route="/a",code="4xx"} 1\n');
  assertIncludes(text, 'wagi_requests_total{route="/b",code="2xx"} 1\n');
  assertIncludes(text, 'wagi_request_duration_seconds_count{route="/a"} 3\n');
  assertIncludes(text, 'wagi_guest_seconds_total{route="/b"} 0.5\n');
  assertIncludes(text, 'wagi_server_requests_total{isolate="0"} 1\n');
  assertIncludes(text, 'wagi_server_requests_total{isolate="1"} 3\n');
  // Both isolates reloaded for one request; each had its own timeout.
  assertIncludes(text, "wagi_reloads_total 1\n");
  assertIncludes(text, "wagi_timeouts_total 2\n");
  assertIncludes(text, "in_flight 3\n");
  assertIncludes(text, "rss 100\n");
  assertIncludes(text, "ok 0\n");
  // A snapshot crosses to another isolate as a message does.
  assertEquals(structuredClone(second.metrics.snapshot()), second.metrics.snapshot());
});
