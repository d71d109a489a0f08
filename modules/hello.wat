;; GET / → the Knative demo's greeting, written in WebAssembly text: no toolchain needed.
;; It writes one iovec (headers, blank line, body) to stdout with WASI fd_write.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; The output at offset 16; the iovec {ptr, len} at 0; the written count at 8.
  (data (i32.const 16) "Content-Type: text/html;charset=UTF-8\n\nOh hi world\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 51))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
