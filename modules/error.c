// GET /error → a 404 chosen by the module itself with a CGI Status header.
#include <stdio.h>

int main(void) {
  printf("Status: 404 Not Found\n");
  printf("Content-Type: text/plain\n\n");
  printf("Not Found\n");
  return 0;
}
