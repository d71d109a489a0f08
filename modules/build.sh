#!/usr/bin/env bash
# Rebuilds WASI modules from their C sources: every *.c in each folder given (default: this
# one) becomes a .wasm beside it. hello.wat needs no build: the server compiles WebAssembly
# text at load time. Needs Debian's clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32.
set -euo pipefail
folders=("$@")
[ ${#folders[@]} -gt 0 ] || folders=("$(dirname "$0")")
for folder in "${folders[@]}"; do
  for source in "$folder"/*.c; do
    clang-14 --target=wasm32-wasi -O2 -s -fuse-ld=lld -o "${source%.c}.wasm" "$source"
    echo "built ${source%.c}.wasm"
  done
done
