// /env/... → shows what WAGI hands a module: its argv, its whole environment sorted as
// `K = V` lines, then echoes stdin (the request body) byte for byte.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

static int compare(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
  printf("Content-Type: text/plain\n\n");
  printf("### argv\n");
  for (int i = 0; i < argc; i++) printf("%d = %s\n", i, argv[i]);

  size_t count = 0;
  while (environ[count]) count++;
  char **sorted = malloc(count * sizeof *sorted);
  memcpy(sorted, environ, count * sizeof *sorted);
  qsort(sorted, count, sizeof *sorted, compare);
  printf("### env\n");
  for (size_t i = 0; i < count; i++) {
    const char *eq = strchr(sorted[i], '=');
    if (eq) printf("%.*s = %s\n", (int)(eq - sorted[i]), sorted[i], eq + 1);
  }
  free(sorted);

  printf("### body\n");
  fflush(stdout);
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, stdin)) > 0) fwrite(buffer, 1, n, stdout);
  return 0;
}
