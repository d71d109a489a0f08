import { assertEquals } from "../_assert.ts";
import { parseMemoryLimit, parseSeconds, parseSize } from "../../src/config/limits.ts";

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

Deno.test("durations: seconds to whole milliseconds, from 1 ms to what a timer can wait", () => {
  assertEquals(parseSeconds("2.5"), 2500);
  assertEquals(parseSeconds(30), 30_000);
  assertEquals(parseSeconds("0.001"), 1);
  assertEquals(parseSeconds("2147483"), 2_147_483_000);
  for (const bad of ["0", "soon", "0.0001", "3000000", 2500000, -1]) {
    assertEquals(parseSeconds(bad), undefined, String(bad));
  }
});

Deno.test("memory limits: at most the 4 GiB a 32-bit memory can have", () => {
  assertEquals(parseMemoryLimit("4GiB"), 4 * 1024 ** 3);
  assertEquals(parseMemoryLimit("5GiB"), undefined);
  assertEquals(parseMemoryLimit("128MiB"), 128 * 1024 ** 2);
});
