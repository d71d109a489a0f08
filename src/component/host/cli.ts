/**
 * `wasi:cli`, `wasi:clocks`, `wasi:random` and `wasi:filesystem` for components, answering from
 * the run in progress: argv and environment (CGI variables for a command), its stdio, and how it
 * is stopped. The filesystem has no preopened directories yet: a component sees no
 * files (volumes are served to WAGI modules only, see docs/components.md).
 * @module
 */

import type { WasiOptions } from "../../wasi/state.ts";
import { ProcExit } from "../../wasi/syscall.ts";
import { InputStream, OutputStream, Pollable } from "./io.ts";

/** `wasi:cli/terminal-input.terminal-input`: never handed out (no stdio is a terminal). */
export class TerminalInput {}
/** `wasi:cli/terminal-output.terminal-output`: never handed out. */
export class TerminalOutput {}

/** `wasi:filesystem/types.descriptor`: none exists, since there are no preopens. */
export class Descriptor {}
/** `wasi:filesystem/types.directory-entry-stream`: none exists either. */
export class DirectoryEntryStream {}

/** Nanoseconds on the monotonic clock. */
function monotonicNow(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
}

/** Random bytes from the system's generator, in pieces it accepts (64 KiB at most each). */
function randomBytes(length: bigint): Uint8Array {
  const bytes = new Uint8Array(Number(length));
  for (let at = 0; at < bytes.length; at += 65536) {
    crypto.getRandomValues(bytes.subarray(at, at + 65536));
  }
  return bytes;
}

function randomU64(): bigint {
  return new BigUint64Array(randomBytes(8n).buffer)[0];
}

/** Most random bytes one call hands out (the guest's allocation, and our copy, stay bounded). */
const MAX_RANDOM = 1024 * 1024;

function boundedRandom(length: bigint): Uint8Array {
  return randomBytes(length > BigInt(MAX_RANDOM) ? BigInt(MAX_RANDOM) : length);
}

/** What the interfaces below read of the run in progress (an instance serves many runs). */
export class RunStdio {
  wasi: WasiOptions;
  stdin: InputStream;
  stdout: OutputStream;
  stderr: OutputStream;
  environment: [string, string][];

  constructor(wasi: WasiOptions) {
    this.wasi = wasi;
    this.stdin = new InputStream(wasi.stdin);
    this.stdout = new OutputStream(wasi.stdout);
    this.stderr = new OutputStream(wasi.stderr);
    this.environment = wasi.env.map(([k, v]) => [k, v]);
  }

  /** Sleeps `ms` under the run's stop signal. */
  sleep(ms: number): void {
    if (this.wasi.stop) this.wasi.stop.sleep(ms);
    else Atomics.wait(SLEEPER, 0, 0, ms);
  }
}

/**
 * The interfaces that answer from the run in progress, as jco's generated code imports them:
 * `run()` is the run being served when a call comes.
 */
export function cliImports(run: () => RunStdio) {
  const sleep = (ms: number) => run().sleep(ms);
  return {
    "wasi:cli/environment": {
      getEnvironment: () => run().environment,
      getArguments: () => [...run().wasi.args],
      initialCwd: () => undefined,
    },
    "wasi:cli/exit": {
      exit(status: { tag: "ok" | "err" }) {
        throw new ProcExit(status.tag === "ok" ? 0 : 1);
      },
      exitWithCode(code: number) {
        throw new ProcExit(code);
      },
    },
    "wasi:cli/stdin": { getStdin: () => run().stdin },
    "wasi:cli/stdout": { getStdout: () => run().stdout },
    "wasi:cli/stderr": { getStderr: () => run().stderr },
    "wasi:cli/terminal-input": { TerminalInput },
    "wasi:cli/terminal-output": { TerminalOutput },
    "wasi:cli/terminal-stdin": { getTerminalStdin: () => undefined },
    "wasi:cli/terminal-stdout": { getTerminalStdout: () => undefined },
    "wasi:cli/terminal-stderr": { getTerminalStderr: () => undefined },
    "wasi:clocks/monotonic-clock": {
      now: monotonicNow,
      resolution: () => 1000n,
      subscribeInstant(when: bigint) {
        const at = Number(when - monotonicNow()) / 1e6 + performance.now();
        return new Pollable(at, sleep);
      },
      subscribeDuration(duration: bigint) {
        return new Pollable(performance.now() + Number(duration) / 1e6, sleep);
      },
    },
    "wasi:clocks/wall-clock": {
      now() {
        const ms = Date.now();
        return { seconds: BigInt(Math.floor(ms / 1000)), nanoseconds: (ms % 1000) * 1e6 };
      },
      resolution: () => ({ seconds: 0n, nanoseconds: 1e6 }),
    },
    "wasi:random/random": { getRandomBytes: boundedRandom, getRandomU64: randomU64 },
    "wasi:random/insecure": {
      getInsecureRandomBytes: boundedRandom,
      getInsecureRandomU64: randomU64,
    },
    "wasi:random/insecure-seed": { insecureSeed: () => [randomU64(), randomU64()] },
    "wasi:filesystem/preopens": { getDirectories: () => [] },
    "wasi:filesystem/types": {
      Descriptor,
      DirectoryEntryStream,
      filesystemErrorCode: () => undefined,
    },
  };
}

const SLEEPER = new Int32Array(new SharedArrayBuffer(4));
