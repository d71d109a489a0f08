# wagi-deno container image: the server and the example modules in modules/.
#
# How the app is prepared, and why (measured on a 2-core machine, see README "Performance"):
# - deno compile would give one binary, but it downloads a matching runtime (denort) at build
#   time from outside the npm registry, which our build machines cannot reach;
# - a single-file bundle (deno bundle / esbuild) breaks the WebAssembly-text compiler (wabt is
#   an Emscripten build that expects CommonJS globals such as __dirname);
# - so the build stage fills a DENO_DIR with every dependency, npm packages and transpiled
#   TypeScript included, and the final stage runs the sources with --cached-only: nothing is
#   downloaded at start, and cold start is that of the source tree with a warm cache.

FROM denoland/deno:2.9.6 AS build
WORKDIR /app
ENV DENO_DIR=/deno-dir
COPY deno.json deno.lock ./
COPY src/ src/
COPY modules/ modules/
# The same command as the `prepare-image` task, which the test suite replays outside Docker.
RUN deno install --frozen --entrypoint src/main.ts src/pool/guest_worker.ts

# Distroless: glibc and the deno binary, no shell, no package manager, no compilers.
FROM denoland/deno:distroless-2.9.6
WORKDIR /app
ENV DENO_DIR=/deno-dir \
    DENO_NO_UPDATE_CHECK=1 \
    PORT=8080
COPY --from=build --chown=nonroot:nonroot /deno-dir /deno-dir
COPY --from=build /app /app
USER nonroot
EXPOSE 8080
# Listens on 0.0.0.0:$PORT; SIGTERM drains in-flight requests, then exits 0.
ENTRYPOINT []
CMD ["deno", "run", "--cached-only", "--allow-all", "--unstable-no-legacy-abort", "--v8-flags=--max-semi-space-size=2,--no-allocation-site-pretenuring", "src/main.ts", "serve", "-c", "modules/modules.toml", "--drain-timeout", "25"]
