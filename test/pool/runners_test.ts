import { assertEquals } from "../_assert.ts";
import { Runners } from "../../src/pool/runners.ts";

/** A runner holding `bytes` until let go. */
function holding(bytes: number) {
  return {
    keptBytes: bytes,
    letGo() {
      this.keptBytes = 0;
    },
  };
}

Deno.test("a worker's kept instances stay within its budget, the least recently used let go first", () => {
  const runners = new Runners<ReturnType<typeof holding>>(10);
  const [a, b, c] = [holding(4), holding(4), holding(4)];
  runners.set(1, a);
  runners.used(1);
  runners.set(2, b);
  runners.used(2);
  assertEquals([a.keptBytes, b.keptBytes], [4, 4], "within the budget: all kept");
  runners.used(1); // 1 is now the most recently used
  runners.set(3, c);
  runners.used(3);
  assertEquals([a.keptBytes, b.keptBytes, c.keptBytes], [4, 0, 4], "2 was used least recently");
  // The one just used keeps its instance even alone over the budget.
  const big = holding(20);
  runners.set(4, big);
  runners.used(4);
  assertEquals([a.keptBytes, c.keptBytes, big.keptBytes], [0, 0, 20]);
  runners.forget([4]);
  assertEquals(runners.get(4), undefined);
});
