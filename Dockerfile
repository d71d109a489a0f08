# wagi-deno container image: the server and the example modules in modules/.
#
# How the app is prepared, and why (measured on a 2-core machine, see test/bench/RESULTS.md):
# - deno compile would give one binary, but it downloads a matching runtime (denort) at build
#   time from outside the npm registry, which our build machines cannot reach;
# - the build stage fills a DENO_DIR with every dependency, bundles the server and its pool
#   worker into dist/ (a few files instead of ~80 modules saves ~25 ms of start; what a start
#   does not use, such as the rewriters and the OCI client, is in files of its own that load
#   when needed), keeping the WebAssembly-text compiler (wabt, an Emscripten build that expects
#   CommonJS globals) outside the bundle, in the DENO_DIR; and loads every bundled module once
#   with --load-only, so that .module-cache holds them compiled and rewritten: a start of the
#   image compiles no text and rewrites nothing; and caches, apart, the little the bundle loads
#   at run time (wabt, pinned in deno.json; --no-lock because installing by the lockfile brings
#   every npm package it names, ~140 MB), so that the final stage carries no other; it runs
#   with --no-lock too, or Deno would want every package the lockfile names in its cache before
#   it loads wabt (what is cached was checked against the registry's integrity when installed);
# - that --load-only run uses the DENO_DIR the final stage ships, with the CMD's flags, and
#   answers one request on a loopback port: Deno keeps what it derived there (its parse of the
#   bundle for imports, the code it compiled, its own serving code's too), so a new container
#   does not derive it again (~70 ms of a container's start without it, measured with podman);
# - the final stage runs the bundle with --cached-only: nothing is downloaded at start.

# The base images (a test builds on one it assembles from the machine, which cannot pull these).
ARG BUILD_IMAGE=denoland/deno:2.9.6
ARG RUN_IMAGE=denoland/deno:distroless-2.9.6

FROM ${BUILD_IMAGE} AS build
WORKDIR /app
ENV DENO_DIR=/deno-dir
COPY deno.json deno.lock ./
COPY src/ src/
COPY modules/ modules/
# The same command as the `prepare-image` task, which the test suite replays outside Docker.
RUN deno install --frozen --entrypoint src/main.ts src/pool/guest_worker.ts && deno task bundle && DENO_DIR=.deno-run deno install --no-lock --entrypoint src/wasm/wat.ts src/component/transpile.ts && DENO_DIR=.deno-run deno run --cached-only --no-lock --allow-all --v8-flags=--max-semi-space-size=2,--no-allocation-site-pretenuring dist/main.js serve -c modules/modules.toml --module-cache .module-cache --load-only

# Distroless: glibc and the deno binary, no shell, no package manager, no compilers.
FROM ${RUN_IMAGE}
WORKDIR /app
ENV DENO_DIR=/deno-dir \
    DENO_NO_UPDATE_CHECK=1 \
    PORT=8080
# What runs: the bundle and its pool worker, the modules, the config the bundle reads its import
# map from, and a DENO_DIR with only what the bundle loads at run time (the WebAssembly-text
# compiler, for a text module not in the module cache); not the sources, nor the npm packages
# the bundle already holds.
COPY --from=build --chown=nonroot:nonroot /app/.deno-run /deno-dir
COPY --from=build /app/deno.json /app/deno.lock /app/
COPY --from=build /app/dist /app/dist
COPY --from=build /app/modules /app/modules
# The server may add to the module cache (modules of a derived image not loaded at its build).
COPY --from=build --chown=nonroot:nonroot /app/.module-cache /app/.module-cache
USER nonroot
EXPOSE 8080
# Listens on 0.0.0.0:$PORT; SIGTERM drains in-flight requests, then exits 0.
ENTRYPOINT []
CMD ["deno", "run", "--cached-only", "--no-lock", "--allow-all", "--v8-flags=--max-semi-space-size=2,--no-allocation-site-pretenuring", "dist/main.js", "serve", "-c", "modules/modules.toml", "--module-cache", ".module-cache", "--drain-timeout", "25"]
