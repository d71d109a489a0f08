// A wasi:http component (WASI 0.2, world wasi:http/proxy) written against the canonical ABI by
// hand: no libc, no generated bindings. Built by modules/build_component.ts (clang, then
// wasm-tools' component embed + new against modules/wit).
//
//   GET  /...               "Hello from a wasi:http component" and the request's method and path
//   POST /...               the request body echoed back, chunk by chunk, as it arrives
//   GET  ...?status=N       answers status N with two `x-repeated` headers
//   GET  ...?header=NAME    answers every value of request header NAME, one per line
//   GET  ...?count          a global counter, incremented: always 1 with fresh state per request
//   GET  ...?checksum       a checksum of all of its memory as the request arrived (after reading
//                           the request): the same on every request to the same URL when every
//                           request starts from fresh state
//   GET  ...?grow           grows memory by 16 MiB: answers "grown" or "refused"
//   GET  ...?fetch=HOST     with WITH_FETCH only (test/fixtures/fetch_component.c): GETs
//                           http://HOST/upstream (wasi:http/outgoing-handler) and answers its
//                           status and body, or "refused"/"failed"; ?hog appends headers without
//                           end (hostile, for tests). Left out here: a component
//                           that imports the handler runs under JSPI, on the slower lane.
//   GET  ...?leak=N         makes N header fields (one header each) and never drops them
//                           (hostile, for tests): answers "leaked N"
//   GET  ...?hold=N         writes 64 KiB into the bodies of N responses it never sends
//                           (hostile, for tests): answers "held N"
//   GET  ...?slow-calls     makes 150,000 header fields, then asks the host about them without
//                           end: each call is cheap to the guest, ~1 ms to the host (hostile)
//   GET  ...?trap           traps before answering
//   GET  ...?loop           loops forever before answering

typedef unsigned char u8;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef unsigned long size_t;

#define IMPORT(module, name) __attribute__((import_module(module), import_name(name)))
#define TYPES "wasi:http/types@0.2.12"
#define STREAMS "wasi:io/streams@0.2.12"
#define POLL "wasi:io/poll@0.2.12"
#define OUTGOING "wasi:http/outgoing-handler@0.2.12"

IMPORT(TYPES, "[constructor]fields") u32 fields_new(void);
IMPORT(TYPES, "[method]fields.append")
void fields_append(u32 self, const char *name, size_t name_len, const u8 *value, size_t value_len,
                   void *ret);
IMPORT(TYPES, "[method]fields.has") u32 fields_has(u32 self, const char *name, size_t name_len);
IMPORT(TYPES, "[method]fields.get")
void fields_get(u32 self, const char *name, size_t name_len, void *ret);
IMPORT(TYPES, "[method]incoming-request.method") void request_method(u32 self, void *ret);
IMPORT(TYPES, "[method]incoming-request.path-with-query") void request_path(u32 self, void *ret);
IMPORT(TYPES, "[method]incoming-request.headers") u32 request_headers(u32 self);
IMPORT(TYPES, "[method]incoming-request.consume") void request_consume(u32 self, void *ret);
IMPORT(TYPES, "[method]incoming-body.stream") void incoming_body_stream(u32 self, void *ret);
IMPORT(TYPES, "[constructor]outgoing-response") u32 response_new(u32 headers);
IMPORT(TYPES, "[method]outgoing-response.set-status-code") u32 response_set_status(u32 self, u32 code);
IMPORT(TYPES, "[method]outgoing-response.body") void response_body(u32 self, void *ret);
IMPORT(TYPES, "[method]outgoing-body.write") void outgoing_body_write(u32 self, void *ret);
IMPORT(TYPES, "[static]outgoing-body.finish")
void outgoing_body_finish(u32 self, u32 has_trailers, u32 trailers, void *ret);
IMPORT(TYPES, "[static]response-outparam.set")
void outparam_set(u32 outparam, u32 is_err, u32 response, u32 a, u64 b, u32 c, u32 d, u32 e, u32 f);
IMPORT(TYPES, "[resource-drop]fields") void fields_drop(u32 self);
IMPORT(TYPES, "[resource-drop]incoming-request") void request_drop(u32 self);
IMPORT(TYPES, "[resource-drop]incoming-body") void incoming_body_drop(u32 self);
IMPORT(STREAMS, "[method]input-stream.blocking-read")
void input_blocking_read(u32 self, u64 len, void *ret);
IMPORT(STREAMS, "[method]output-stream.blocking-write-and-flush")
void output_write(u32 self, const u8 *bytes, size_t len, void *ret);
IMPORT(STREAMS, "[resource-drop]input-stream") void input_drop(u32 self);
#ifdef WITH_FETCH
IMPORT(TYPES, "[constructor]outgoing-request") u32 outgoing_request_new(u32 headers);
IMPORT(TYPES, "[method]outgoing-request.set-authority")
u32 outgoing_request_set_authority(u32 self, u32 some, const u8 *ptr, size_t len);
IMPORT(TYPES, "[method]outgoing-request.set-path-with-query")
u32 outgoing_request_set_path(u32 self, u32 some, const char *ptr, size_t len);
IMPORT(OUTGOING, "handle") void outgoing_handle(u32 request, u32 some, u32 options, void *ret);
IMPORT(TYPES, "[method]future-incoming-response.subscribe") u32 future_subscribe(u32 self);
IMPORT(TYPES, "[method]future-incoming-response.get") void future_get(u32 self, void *ret);
IMPORT(TYPES, "[method]incoming-response.status") u32 incoming_response_status(u32 self);
IMPORT(TYPES, "[method]incoming-response.consume") void incoming_response_consume(u32 self, void *ret);
IMPORT(POLL, "[method]pollable.block") void pollable_block(u32 self);
IMPORT(POLL, "[resource-drop]pollable") void pollable_drop(u32 self);
#endif
IMPORT(STREAMS, "[resource-drop]output-stream") void output_drop(u32 self);

// The host allocates lists and strings it returns through this; everything is released at the
// end of a request (an instance serves one), and the echo loop releases each chunk it wrote.
// (A test fixture includes this file with a larger heap, for a component of a larger memory.)
#ifndef HEAP_BYTES
#define HEAP_BYTES (64 * 1024)
#endif
static u8 heap[HEAP_BYTES];
static size_t heap_used;

__attribute__((export_name("cabi_realloc")))
void *cabi_realloc(void *old, size_t old_size, size_t align, size_t new_size) {
  size_t at = (heap_used + align - 1) & ~(align - 1);
  if (at + new_size > sizeof heap) __builtin_trap();
  u8 *fresh = heap + at;
  for (size_t i = 0; i < old_size && i < new_size; i++) fresh[i] = ((u8 *)old)[i];
  heap_used = at + new_size;
  return fresh;
}

static size_t length(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

static int starts_with(const u8 *s, size_t len, const char *prefix) {
  size_t n = length(prefix);
  if (len < n) return 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] != (u8)prefix[i]) return 0;
  return 1;
}

// The query parameter `name` (with `=`, or alone) in `path`; its value's start and length.
static int query_param(const u8 *path, size_t len, const char *name, const u8 **value,
                       size_t *value_len) {
  size_t i = 0;
  while (i < len && path[i] != '?') i++;
  while (i < len) {
    i++;  // past '?' or '&'
    size_t start = i;
    while (i < len && path[i] != '&') i++;
    if (starts_with(path + start, i - start, name)) {
      size_t n = length(name);
      if (i - start == n) {
        *value = path + i;
        *value_len = 0;
        return 1;
      }
      if (path[start + n] == '=') {
        *value = path + start + n + 1;
        *value_len = i - start - n - 1;
        return 1;
      }
    }
  }
  return 0;
}

static u32 number(const u8 *digits, size_t len) {
  u32 n = 0;
  for (size_t i = 0; i < len && digits[i] >= '0' && digits[i] <= '9'; i++) n = n * 10 + digits[i] - '0';
  return n;
}

static void header(u32 fields, const char *name, const char *value) {
  u32 ret[4];
  fields_append(fields, name, length(name), (const u8 *)value, length(value), ret);
}

static void write_all(u32 stream, const u8 *bytes, size_t len) {
  u32 ret[4];
  // blocking-write-and-flush takes 4,096 bytes at most per call.
  while (len > 0) {
    size_t n = len < 4096 ? len : 4096;
    output_write(stream, bytes, n, ret);
    if ((u8)ret[0] != 0) __builtin_trap();
    bytes += n;
    len -= n;
  }
}

static void write_text(u32 stream, const char *text) { write_all(stream, (const u8 *)text, length(text)); }

static u32 counter;

// Sends a response with `status` and `headers`; returns its body's output stream.
static u32 respond(u32 outparam, u32 headers, u32 status, u32 *body) {
  u32 ret[4];
  u32 response = response_new(headers);
  response_set_status(response, status);
  response_body(response, ret);
  if ((u8)ret[0] != 0) __builtin_trap();
  *body = ret[1];
  outparam_set(outparam, 0, response, 0, 0, 0, 0, 0, 0);
  outgoing_body_write(*body, ret);
  if ((u8)ret[0] != 0) __builtin_trap();
  return ret[1];
}

static void finish(u32 body, u32 stream) {
  u32 ret[4];
  output_drop(stream);
  outgoing_body_finish(body, 0, 0, ret);
}

// Answers "`what` N\n" (N as the query gave it) and ends the request.
static void answer_done(u32 request, u32 outparam, u32 headers, const char *what, const u8 *n,
                        size_t n_len) {
  u32 body;
  header(headers, "content-type", "text/plain");
  u32 stream = respond(outparam, headers, 200, &body);
  write_text(stream, what);
  write_all(stream, n, n_len);
  write_text(stream, "\n");
  finish(body, stream);
  request_drop(request);
}

// FNV-1a over all of memory but its first byte (address 0 cannot be read in C).
static __attribute__((noinline)) u32 memory_checksum(void) {
  u32 sum = 2166136261u;
  size_t size = __builtin_wasm_memory_size(0) * 65536;
  for (size_t at = 1; at < size; at++) sum = (sum ^ *(volatile const u8 *)at) * 16777619u;
  return sum;
}

__attribute__((export_name("wasi:http/incoming-handler@0.2.12#handle")))
void handle(u32 request, u32 outparam) {
  u32 method[3], path[3];
#ifdef STATIC_RETURN_AREA
  // For a test fixture: a return area only the host writes (wit-bindgen's are static too).
  static u32 ret[256] __attribute__((aligned(1024)));
#else
  u32 ret[4];
#endif
  request_method(request, method);
  request_path(request, path);
  const u8 *path_bytes = (u8)path[0] ? (const u8 *)path[1] : (const u8 *)"/";
  size_t path_len = (u8)path[0] ? path[2] : 1;
  const u8 *value;
  size_t value_len;
  // Before anything else is written (what reading the request wrote is the same every time).
  u32 checksum = query_param(path_bytes, path_len, "checksum", &value, &value_len)
                     ? memory_checksum() : 0;
  u32 headers = fields_new();
  u32 body, stream;

  if (query_param(path_bytes, path_len, "trap", &value, &value_len)) __builtin_trap();
#ifdef WITH_FETCH
  if (query_param(path_bytes, path_len, "hog", &value, &value_len)) {
    // Hostile: headers without end, each copied out to the host.
    u32 hog = fields_new();
    for (;;) header(hog, "x-hog", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  }
#endif
  if (query_param(path_bytes, path_len, "loop", &value, &value_len)) {
    volatile u32 spin = 0;
    for (;;) spin++;
  }
  if (query_param(path_bytes, path_len, "leak", &value, &value_len)) {
    // Hostile: resources the host keeps for the guest until it drops them, which it never does.
    u32 n = number(value, value_len);
    for (u32 i = 0; i < n; i++) header(fields_new(), "x-leak", "0123456789abcdef0123456789abcdef");
    answer_done(request, outparam, headers, "leaked ", value, value_len);
    return;
  }
  if (query_param(path_bytes, path_len, "slow-calls", &value, &value_len)) {
    u32 many = fields_new();
    for (u32 i = 0; i < 150000; i++) header(many, "x-many", "0123456789abcdef");
    volatile u32 found = 0;
    for (;;) found += fields_has(many, "x-none", 6);
  }
  if (query_param(path_bytes, path_len, "hold", &value, &value_len)) {
    // Hostile: body bytes the host holds until a response is set, which it never is.
    static u8 chunk[4096];
    u32 n = number(value, value_len);
    for (u32 i = 0; i < n; i++) {
      response_body(response_new(fields_new()), ret);
      if ((u8)ret[0] != 0) __builtin_trap();
      outgoing_body_write(ret[1], ret);
      if ((u8)ret[0] != 0) __builtin_trap();
      u32 held = ret[1];
      for (u32 k = 0; k < 16; k++) write_all(held, chunk, sizeof chunk);
    }
    answer_done(request, outparam, headers, "held ", value, value_len);
    return;
  }
  if ((u8)method[0] == 2) {  // post: echo the body as it comes
    header(headers, "content-type", "application/octet-stream");
    request_consume(request, ret);
    if ((u8)ret[0] != 0) __builtin_trap();
    u32 incoming = ret[1];
    incoming_body_stream(incoming, ret);
    if ((u8)ret[0] != 0) __builtin_trap();
    u32 input = ret[1];
    stream = respond(outparam, headers, 200, &body);
    for (;;) {
      size_t mark = heap_used;
      u32 read[3];
      input_blocking_read(input, 32768, read);
      if ((u8)read[0] != 0) break;  // closed (or failed): the body ended
      write_all(stream, (const u8 *)read[1], read[2]);
      heap_used = mark;
    }
    input_drop(input);
    incoming_body_drop(incoming);
    finish(body, stream);
    request_drop(request);
    return;
  }
  if (query_param(path_bytes, path_len, "header", &value, &value_len)) {
    u32 request_fields = request_headers(request);
    u32 list[2];
    fields_get(request_fields, (const char *)value, value_len, list);
    header(headers, "content-type", "text/plain");
    stream = respond(outparam, headers, 200, &body);
    u32 *entries = (u32 *)list[0];
    for (u32 i = 0; i < list[1]; i++) {
      write_all(stream, (const u8 *)entries[2 * i], entries[2 * i + 1]);
      write_text(stream, "\n");
    }
    fields_drop(request_fields);
    finish(body, stream);
    request_drop(request);
    return;
  }
  u32 status = 200;
  if (query_param(path_bytes, path_len, "status", &value, &value_len)) {
    status = number(value, value_len);
    header(headers, "x-repeated", "one");
    header(headers, "x-repeated", "two");
  }
  header(headers, "content-type", "text/plain");
  stream = respond(outparam, headers, status, &body);
#ifdef WITH_FETCH
  if (query_param(path_bytes, path_len, "fetch", &value, &value_len)) {
    // A GET of http://HOST/upstream, its answer relayed.
    u32 request_out = outgoing_request_new(fields_new());
    outgoing_request_set_authority(request_out, 1, value, value_len);
    outgoing_request_set_path(request_out, 1, "/upstream", 9);
    u64 sent[4];
    outgoing_handle(request_out, 0, 0, sent);
    if ((u8)sent[0] != 0) {
      // error-code 15: HTTP-request-denied.
      write_text(stream, ((u8 *)sent)[8] == 15 ? "refused\n" : "failed\n");
    } else {
      u32 future = (u32)sent[1];
      u32 pollable = future_subscribe(future);
      pollable_block(pollable);
      pollable_drop(pollable);
      u64 got[4];
      future_get(future, got);
      // option<result<result<incoming-response, error-code>>>: tags at 0, 8 and 16.
      if ((u8)got[0] != 1 || (u8)got[1] != 0 || (u8)got[2] != 0) {
        write_text(stream, "failed\n");
      } else {
        u32 response = (u32)got[3];
        u32 status = incoming_response_status(response);
        u8 digits[4] = {(u8)('0' + status / 100), (u8)('0' + status / 10 % 10), (u8)('0' + status % 10), '\n'};
        write_text(stream, "fetched ");
        write_all(stream, digits, 4);
        incoming_response_consume(response, ret);
        incoming_body_stream(ret[1], ret);
        u32 input = ret[1];
        for (;;) {
          size_t mark = heap_used;
          u32 read[3];
          input_blocking_read(input, 32768, read);
          if ((u8)read[0] != 0) break;
          write_all(stream, (const u8 *)read[1], read[2]);
          heap_used = mark;
        }
        input_drop(input);
      }
    }
  } else
#endif
  if (query_param(path_bytes, path_len, "grow", &value, &value_len)) {
    write_text(stream, __builtin_wasm_memory_grow(0, 256) == (size_t)-1 ? "refused\n" : "grown\n");
  } else if (query_param(path_bytes, path_len, "checksum", &value, &value_len)) {
    u8 hex[9];
    for (int i = 0; i < 8; i++) hex[i] = "0123456789abcdef"[(checksum >> (28 - 4 * i)) & 15];
    hex[8] = '\n';
    write_all(stream, hex, 9);
  } else if (query_param(path_bytes, path_len, "count", &value, &value_len)) {
    counter++;
    u8 digit[2] = {(u8)('0' + counter % 10), '\n'};
    write_all(stream, digit, 2);
  } else {
    static const char *methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    write_text(stream, "Hello from a wasi:http component\n");
    if ((u8)method[0] <= 8) write_text(stream, methods[(u8)method[0]]);
    else write_all(stream, (const u8 *)method[1], method[2]);
    write_text(stream, " ");
    write_all(stream, path_bytes, path_len);
    write_text(stream, "\n");
  }
  finish(body, stream);
  request_drop(request);
}
