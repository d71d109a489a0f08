// GET /log → writes a line to stderr, which the server appends to
// <log dir>/<sha256 of the route>/module.stderr, and says so on stdout.
#include <stdio.h>

int main(void) {
  fprintf(stderr, "log module: hello from stderr\n");
  printf("Content-Type: text/plain\n\n");
  printf("wrote one line to stderr\n");
  return 0;
}
