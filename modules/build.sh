#!/usr/bin/env bash
# Rebuilds WASI modules from their sources: in each folder given (default: this one), every
# *.c becomes a .wasm beside it (Debian's clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32),
# every *.rs too (Debian's rustc and libstd-rust-dev-wasm32: /usr/bin/rustc, explicitly), and
# every *_as.ts (AssemblyScript, from npm through deno). hello.wat needs no build: the server
# compiles WebAssembly text at load time.
set -euo pipefail
folders=("$@")
[ ${#folders[@]} -gt 0 ] || folders=("$(dirname "$0")")
for folder in "${folders[@]}"; do
  for source in "$folder"/*.c; do
    [ -e "$source" ] || continue
    clang-14 --target=wasm32-wasi -O2 -s -fuse-ld=lld -o "${source%.c}.wasm" "$source"
    echo "built ${source%.c}.wasm"
  done
  for source in "$folder"/*.rs; do
    [ -e "$source" ] || continue
    /usr/bin/rustc --target wasm32-wasi -O -C strip=symbols -C panic=abort \
      -o "${source%.rs}.wasm" "$source"
    echo "built ${source%.rs}.wasm"
  done
  for source in "$folder"/*_as.ts; do
    [ -e "$source" ] || continue
    name="$(basename "${source%.ts}")"
    # AssemblyScript names the entry file's elements by its path from the working directory.
    (cd "$(dirname "$source")" && deno run --allow-read --allow-write --allow-env \
      npm:assemblyscript@0.28.20/asc "$name.ts" -O3 --runtime incremental \
      --use "abort=$name/abort" --noAssert -o "$name.wasm")
    echo "built ${source%.ts}.wasm"
  done
done
