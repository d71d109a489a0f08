// GET /hello and /hello/... → a plain-text greeting, the smallest C WAGI module.
#include <stdio.h>

int main(void) {
  printf("Content-Type: text/plain\n\n");
  printf("hello world\n");
  return 0;
}
