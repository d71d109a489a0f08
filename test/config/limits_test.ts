import { assertEquals } from "../_assert.ts";
import { parseSeconds, parseSize } from "../../src/config/limits.ts";

Deno.test("sizes: bytes, decimal and binary units, case-insensitive; nonsense is undefined", () => {
  assertEquals(parseSize(1000), 1000);
  assertEquals(parseSize("1000"), 1000);
  assertEquals(parseSize("128MiB"), 128 * 1024 * 1024);
  assertEquals(parseSize("64 mb"), 64_000_000);
  assertEquals(parseSize("1GiB"), 1024 ** 3);
  assertEquals(parseSize("1.5KiB"), 1536);
  for (const bad of ["", "MiB", "12 parsecs", "-5", "0", 0, 1.5, -1]) {
    assertEquals(parseSize(bad), undefined, String(bad));
  }
});

Deno.test("durations: seconds to milliseconds, positive only", () => {
  assertEquals(parseSeconds("2.5"), 2500);
  assertEquals(parseSeconds(30), 30_000);
  assertEquals(parseSeconds("0"), undefined);
  assertEquals(parseSeconds("soon"), undefined);
});
