#!/usr/bin/env bash
# Rebuilds WASI modules from their sources: in each folder given (default: this one), every
# *.c becomes a .wasm beside it (Debian's clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32),
# every *.rs too (Debian's rustc and libstd-rust-dev-wasm32: /usr/bin/rustc, explicitly), and
# every *_as.ts (AssemblyScript, from npm through deno), and every *_component.c into a WASI 0.2
# component of the world of that name in modules/wit (build_component.ts, no libc). With
# test/fixtures among the folders, test/fixtures/env_command.wasm is remade from modules/env.wasm
# (a wasi:cli command component, through jco's preview1 adapter). hello.wat needs no build: the
# server compiles WebAssembly text at load time.
set -euo pipefail
folders=("$@")
[ ${#folders[@]} -gt 0 ] || folders=("$(dirname "$0")")
for folder in "${folders[@]}"; do
  for source in "$folder"/*.c; do
    [ -e "$source" ] || continue
    case "$source" in
      *_component.c)
        world="$(basename "${source%.c}" | tr _ -)"
        deno run --allow-all "$(dirname "$0")/build_component.ts" http "$source" "$world"
        continue
        ;;
    esac
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
for folder in "${folders[@]}"; do
  if [ "$(basename "$folder")" = fixtures ]; then
    here="$(dirname "$0")"
    deno run --allow-all "$here/build_component.ts" command "$here/env.wasm" \
      "$folder/env_command.wasm"
  fi
done
