// The wasi_experimental_http imports (WAGI's outbound HTTP ABI), declared for C modules.
// Every call returns 0 or an error code: 1 invalid handle, 2 memory not found, 3 memory
// access, 4 buffer too small, 5 header not found, 6 UTF-8, 7 destination not allowed,
// 8 invalid method, 9 invalid encoding, 10 invalid URL, 11 request error, 12 runtime error,
// 13 too many sessions. Headers travel as "name:value\n" lines.
#ifndef WASI_EXPERIMENTAL_HTTP_H
#define WASI_EXPERIMENTAL_HTTP_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_IMPORT(name) __attribute__((import_module("wasi_experimental_http"), import_name(name)))

HTTP_IMPORT("req")
uint32_t http_req(const char *url, size_t url_len, const char *method, size_t method_len,
                  const char *headers, size_t headers_len, const uint8_t *body, size_t body_len,
                  uint16_t *status, uint32_t *handle);
HTTP_IMPORT("close") uint32_t http_close(uint32_t handle);
HTTP_IMPORT("header_get")
uint32_t http_header_get(uint32_t handle, const char *name, size_t name_len, char *value,
                         size_t value_len, size_t *written);
HTTP_IMPORT("headers_get_all")
uint32_t http_headers_get_all(uint32_t handle, char *buf, size_t buf_len, size_t *written);
HTTP_IMPORT("body_read")
uint32_t http_body_read(uint32_t handle, uint8_t *buf, size_t buf_len, size_t *written);

#endif
