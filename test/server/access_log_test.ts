import { assertEquals, assertOk } from "../_assert.ts";
import {
  type AccessEntry,
  AccessLog,
  ATOMIC_WRITE_BYTES,
  clfTime,
  formatAccess,
} from "../../src/server/access_log.ts";

const entry: AccessEntry = {
  remote: "192.0.2.7",
  method: "GET",
  target: "/hello?x=1",
  protocol: "HTTP/1.1",
  status: 200,
  bytes: 12,
  time: Date.UTC(2026, 10, 30, 6, 5, 9),
  durationMs: 0.25,
  route: "/hello",
};

Deno.test("access log: common is CLF, in UTC; json has every field", () => {
  assertEquals(clfTime(entry.time), "30/Nov/2026:06:05:09 +0000");
  assertEquals(
    formatAccess(entry, "common"),
    '192.0.2.7 - - [30/Nov/2026:06:05:09 +0000] "GET /hello?x=1 HTTP/1.1" 200 12\n',
  );
  assertEquals(JSON.parse(formatAccess({ ...entry, bytes: undefined }, "json")), {
    time: "2026-11-30T06:05:09.000Z",
    remote: "192.0.2.7",
    method: "GET",
    target: "/hello?x=1",
    protocol: "HTTP/1.1",
    status: 200,
    bytes: null,
    duration_ms: 0.25,
    route: "/hello",
  });
});

Deno.test("access log: a client's quotes and control characters cannot forge a line", () => {
  const line = formatAccess({ ...entry, target: '/x" 200 1\n1.2.3.4 - - [' }, "common");
  assertEquals(line.split("\n").length, 2, line);
  assertEquals(line.includes("/x\\x22 200 1\\x0a1.2.3.4"), true, line);
});

Deno.test("access log: lines are written in order, in batches, and a failed write loses only its own", async () => {
  const writes: string[] = [];
  let fail = false;
  const log = new AccessLog("common", {
    write(bytes) {
      if (fail) return Promise.reject(new Error("disk full"));
      // Half at a time: the log writes the rest.
      const taken = Math.ceil(bytes.length / 2);
      writes.push(new TextDecoder().decode(bytes.subarray(0, taken)));
      return Promise.resolve(taken);
    },
  }, 10_000);
  log.add(entry);
  log.add({ ...entry, status: 404 });
  await log.flush();
  assertEquals(writes.join("").split("\n").filter(Boolean).map((l) => l.split(" ").at(-2)), [
    "200",
    "404",
  ]);
  fail = true;
  log.add({ ...entry, status: 500 });
  await log.flush();
  fail = false;
  log.add({ ...entry, status: 201 });
  await log.flush();
  assertEquals(writes.join("").split("\n").filter(Boolean).map((l) => l.split(" ").at(-2)), [
    "200",
    "404",
    "201",
  ]);
});

Deno.test("access log: shared with other isolates, each write is whole lines within a pipe's atomic size", async () => {
  const writes: Uint8Array[] = [];
  const log = new AccessLog(
    "json",
    {
      write(bytes) {
        writes.push(bytes.slice());
        return Promise.resolve(bytes.length);
      },
    },
    10_000,
    true,
  );
  // A path with multi-byte characters: sizes are counted in bytes.
  const paths = Array.from({ length: 300 }, (_, i) => `/p/${"é".repeat(i % 40)}${i}`);
  for (const target of paths) log.add({ ...entry, target });
  await log.flush();
  assertOk(writes.length > 1, `${writes.length} writes`);
  for (const bytes of writes) {
    assertOk(bytes.length <= ATOMIC_WRITE_BYTES, `a write of ${bytes.length} bytes`);
    assertEquals(bytes.at(-1), "\n".charCodeAt(0), "a write ends with its last line");
  }
  const lines = writes.map((b) => new TextDecoder().decode(b)).join("").split("\n").filter(Boolean);
  assertEquals(lines.map((line) => JSON.parse(line).target), paths);
});
