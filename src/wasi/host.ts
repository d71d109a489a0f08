/**
 * The WASI preview1 host: one guest's arguments, environment, descriptors and memory, and
 * the import objects that expose them under `wasi_snapshot_preview1` and `wasi_unstable`.
 * It knows nothing of HTTP: callers hand it bytes and sinks.
 * @module
 */

import { Errno, errnoOf, WasiError } from "./errno.ts";
import { GuestMemory } from "./memory.ts";
import { BytesSource, DISCARD, NO_BYTES } from "./streams.ts";
import {
  Descriptor,
  DirectoryDescriptor,
  InputDescriptor,
  type InputSource,
  OutputDescriptor,
  type OutputSink,
} from "./descriptors.ts";
import { argsEnvironCalls } from "./calls/args_environ.ts";
import { fdCalls } from "./calls/fd.ts";
import { pathCalls } from "./calls/path.ts";
import { clockRandomCalls } from "./calls/clock_random.ts";
import { procCalls } from "./calls/proc.ts";
import { pollCalls } from "./calls/poll.ts";
import { sockCalls } from "./calls/sock.ts";

/** A host directory made visible to the guest at `guestPath`. */
export interface Preopen {
  guestPath: string;
  hostPath: string;
  /** Mounted read-only: every change beneath it fails with `PERM`. */
  readOnly?: boolean;
}

/** Everything a guest run is given. */
export interface WasiOptions {
  args: readonly string[];
  /** `KEY=VALUE` pairs, in the order the guest sees them. */
  env: readonly (readonly [string, string])[];
  stdin: InputSource;
  stdout: OutputSink;
  stderr: OutputSink;
  preopens?: readonly Preopen[];
}

/** The options of a host before any run: no arguments, environment, input or output. */
export function idleOptions(): WasiOptions {
  return { args: [], env: [], stdin: new BytesSource(NO_BYTES), stdout: DISCARD, stderr: DISCARD };
}

/** Thrown by `proc_exit` to unwind the guest; the runner catches it and reads `code`. */
export class ProcExit {
  constructor(readonly code: number) {}
}

/** Which of the two WASI snapshots a call set is for; their layouts differ in a few places. */
export type Snapshot = "preview0" | "preview1";

/** The import module name of each snapshot. */
export const SNAPSHOT_MODULES: Record<Snapshot, string> = {
  preview1: "wasi_snapshot_preview1",
  preview0: "wasi_unstable",
};

/** The snapshots whose import modules `module` uses, so only those call tables are built. */
export function snapshotsOf(module: WebAssembly.Module): Snapshot[] {
  const used = new Set(WebAssembly.Module.imports(module).map((i) => i.module));
  return (Object.keys(SNAPSHOT_MODULES) as Snapshot[]).filter((s) => used.has(SNAPSHOT_MODULES[s]));
}

/** What a module can ask its host for at all: whether it imports the calls that read them. */
export interface GuestInputs {
  args: boolean;
  env: boolean;
}

/**
 * Whether `module` imports `args_*` and `environ_*` (under either snapshot): a module that
 * does not can never see its argv or environment, so they need not be built for it.
 */
export function inputsOf(module: WebAssembly.Module): GuestInputs {
  const wasi = new Set(Object.values(SNAPSHOT_MODULES));
  const names = new Set(
    WebAssembly.Module.imports(module).filter((i) => wasi.has(i.module)).map((i) => i.name),
  );
  return {
    args: names.has("args_get") || names.has("args_sizes_get"),
    env: names.has("environ_get") || names.has("environ_sizes_get"),
  };
}

/** A table of WASI import functions. */
export type CallTable = Record<string, (...args: never[]) => number>;

/** Wraps a host function so that any failure becomes an errno and `ProcExit` passes through. */
export function syscall<A extends unknown[]>(
  fn: (...args: A) => number | void,
): (...args: A) => number {
  return (...args: A): number => {
    try {
      return fn(...args) ?? Errno.SUCCESS;
    } catch (error) {
      if (error instanceof ProcExit) throw error;
      return errnoOf(error);
    }
  };
}

const encoder = new TextEncoder();

/** No strings at all. */
const NO_STRINGS: CStrings = { bytes: new Uint8Array(), starts: [] };

/** NUL-terminated UTF-8 strings back to back, as `args_get` and `environ_get` hand them out. */
export interface CStrings {
  bytes: Uint8Array;
  /** Where each string starts in `bytes`. */
  starts: number[];
}

/**
 * Encodes strings as one buffer of NUL-terminated UTF-8. With `scratch`, the bytes are a view
 * of it when they fit (valid until it is used again): allocating a buffer costs more than
 * encoding a whole environment.
 */
export function cStrings(items: readonly string[], scratch?: Uint8Array): CStrings {
  // Most modules get no arguments or environment: no call into the encoder then.
  if (items.length === 0) return NO_STRINGS;
  const starts: number[] = new Array(items.length);
  let joined = "";
  for (let i = 0; i < items.length; i++) {
    starts[i] = joined.length;
    joined += items[i] + "\0";
  }
  const into = scratch && scratch.length >= joined.length * 3
    ? scratch
    : new Uint8Array(joined.length * 3);
  const { written } = encoder.encodeInto(joined, into);
  // One byte per character: all ASCII, so the string offsets are the byte offsets.
  if (written === joined.length) return { bytes: into.subarray(0, written), starts };
  let at = 0;
  for (let i = 0; i < items.length; i++) {
    starts[i] = at;
    at += encoder.encodeInto(items[i] + "\0", into.subarray(at)).written;
  }
  return { bytes: into.subarray(0, at), starts };
}

/** The whole buffer `strings` were encoded into, to reuse for the next encoding. */
function scratchOf(strings: CStrings, scratch: Uint8Array | undefined): Uint8Array | undefined {
  if (strings === NO_STRINGS || strings.bytes.buffer === scratch?.buffer) return scratch;
  return new Uint8Array(strings.bytes.buffer as ArrayBuffer);
}

/** Joins an environment into the `KEY=VALUE` strings a guest sees. */
function envStrings(env: readonly (readonly [string, string])[]): string[] {
  const out = new Array<string>(env.length);
  for (let i = 0; i < env.length; i++) out[i] = env[i][0] + "=" + env[i][1];
  return out;
}

/** One guest's WASI state and its imports. */
export class WasiHost {
  /** Guest linear memory, attached once the instance exists. */
  readonly memory = new GuestMemory();
  /** Descriptor table; index is the guest fd, `undefined` a closed slot. */
  fds: (Descriptor | undefined)[] = [];
  /** Arguments, NUL-terminated UTF-8. */
  args: CStrings = NO_STRINGS;
  /** Environment as `KEY=VALUE`, NUL-terminated UTF-8. */
  env: CStrings = NO_STRINGS;
  /** The buffers `args` and `env` were encoded into, reused by the next `reset`. */
  #argsScratch: Uint8Array | undefined;
  #envScratch: Uint8Array | undefined;

  constructor(options: WasiOptions) {
    this.reset(options);
  }

  /**
   * Gives this host the state of a new run (after `closeAll`), so that an instance linked to
   * its imports once can serve many runs.
   */
  reset(options: WasiOptions): void {
    this.args = cStrings(options.args, this.#argsScratch);
    this.#argsScratch = scratchOf(this.args, this.#argsScratch);
    this.env = cStrings(envStrings(options.env), this.#envScratch);
    this.#envScratch = scratchOf(this.env, this.#envScratch);
    const fds: (Descriptor | undefined)[] = [
      new InputDescriptor(options.stdin),
      new OutputDescriptor(options.stdout),
      new OutputDescriptor(options.stderr),
    ];
    for (const p of options.preopens ?? []) {
      fds.push(new DirectoryDescriptor(p.hostPath, p.guestPath, p.readOnly ?? false));
    }
    this.fds = fds;
  }

  /** The open descriptor `fd`, or `BADF`. */
  descriptor(fd: number): Descriptor {
    const found = this.fds[fd];
    if (found === undefined) throw new WasiError(Errno.BADF);
    return found;
  }

  /** The open directory descriptor `fd`; `BADF` if closed, `NOTDIR` if not a directory. */
  directory(fd: number): DirectoryDescriptor {
    const found = this.descriptor(fd);
    if (!(found instanceof DirectoryDescriptor)) throw new WasiError(Errno.NOTDIR);
    return found;
  }

  /** Puts a descriptor in the lowest free slot and returns its fd. */
  allocate(descriptor: Descriptor): number {
    let fd = this.fds.indexOf(undefined);
    if (fd === -1) fd = this.fds.length;
    this.fds[fd] = descriptor;
    return fd;
  }

  /** Closes every descriptor the guest left open (host files, not the streams). */
  closeAll(): void {
    for (const descriptor of this.fds) {
      try {
        descriptor?.close();
      } catch { /* already closed by the guest */ }
    }
    this.fds.length = 0;
  }

  /** The import object: every call under each requested snapshot's module name. */
  imports(snapshots: readonly Snapshot[] = ["preview1", "preview0"]): WebAssembly.Imports {
    const imports: WebAssembly.Imports = {};
    for (const snapshot of snapshots) imports[SNAPSHOT_MODULES[snapshot]] = this.#calls(snapshot);
    return imports;
  }

  #calls(snapshot: Snapshot): CallTable {
    return {
      ...argsEnvironCalls(this),
      ...fdCalls(this, snapshot),
      ...pathCalls(this, snapshot),
      ...clockRandomCalls(this),
      ...procCalls(),
      ...pollCalls(this, snapshot),
      ...sockCalls(this),
    } as CallTable;
  }
}
