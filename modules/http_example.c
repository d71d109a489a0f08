// /http-example?url=URL → fetches URL with outbound HTTP (wasi_experimental_http) and reports
// the status and the body length. Only hosts in the route's allowed_hosts can be reached.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasi_experimental_http.h"

int main(void) {
  const char *query = getenv("QUERY_STRING");
  const char *url = query && strncmp(query, "url=", 4) == 0 ? query + 4 : NULL;
  if (!url || !*url) {
    printf("Status: 400\nContent-Type: text/plain\n\nusage: /http-example?url=http://...\n");
    return 0;
  }
  uint16_t status = 0;
  uint32_t handle = 0;
  uint32_t err = http_req(url, strlen(url), "GET", 3, "", 0, NULL, 0, &status, &handle);
  if (err != 0) {
    printf("Status: 502\nContent-Type: text/plain\n\nrequest to %s failed with error %u\n", url,
           err);
    return 0;
  }
  static uint8_t buffer[16384];
  size_t total = 0, n = 0;
  while ((err = http_body_read(handle, buffer, sizeof buffer, &n)) == 0 && n > 0) total += n;
  http_close(handle);
  printf("Content-Type: text/plain\n\nstatus: %u\nbody length: %zu\n", status, total);
  return err == 0 ? 0 : 1;
}
