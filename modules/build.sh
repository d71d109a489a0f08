#!/usr/bin/env bash
# Rebuilds the example modules from their C sources (hello.wat needs no build: the server
# compiles WebAssembly text at load time). Needs Debian's
# clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32.
set -euo pipefail
cd "$(dirname "$0")"
for source in *.c; do
  clang-14 --target=wasm32-wasi -O2 -s -fuse-ld=lld -o "${source%.c}.wasm" "$source"
  echo "built modules/${source%.c}.wasm"
done
