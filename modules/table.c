// A CPU-heavier WAGI handler: renders a 200-row HTML table whose every cell is the result of
// some arithmetic (a xorshift run per row), about 3 ms of work per request on a 2020s core.
// The query string's `seed` changes the numbers.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t churn(uint64_t x, int rounds) {
  for (int i = 0; i < rounds; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  return x;
}

int main(void) {
  const char *query = getenv("QUERY_STRING");
  const char *seed_text = query ? strstr(query, "seed=") : NULL;
  uint64_t seed = seed_text ? strtoull(seed_text + 5, NULL, 10) : 1;
  printf("Content-Type: text/html; charset=utf-8\n\n");
  printf("<!doctype html><title>table</title><table><tr><th>row</th><th>value</th><th>hex</th></tr>\n");
  for (int row = 0; row < 200; row++) {
    uint64_t value = churn(seed + row + 1, 7000);
    printf("<tr><td>%d</td><td>%llu</td><td>%016llx</td></tr>\n", row,
           (unsigned long long)(value % 1000000007), (unsigned long long)value);
  }
  printf("</table>\n");
  return 0;
}
