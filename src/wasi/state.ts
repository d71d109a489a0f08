/**
 * One guest's WASI state: its arguments, environment, descriptor table and memory. The calls
 * in `calls/` read and change it; `host.ts` turns them into import objects.
 * @module
 */

import { Errno, WasiError } from "./errno.ts";
import { roomForGuestDescriptor } from "../open_files.ts";
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

/** A host directory made visible to the guest at `guestPath`. */
export interface Preopen {
  guestPath: string;
  hostPath: string;
  /** Mounted read-only: every change beneath it fails with `PERM`. */
  readOnly?: boolean;
}

/**
 * How an embedder stops a guest from outside while it runs or waits in a call: a stopped
 * guest's next call throws (an `Unwind`, which the guest cannot turn into an errno), and a
 * call that waits wakes up. A call already inside the host's own blocking I/O cannot be woken.
 */
export interface StopSignal {
  /** Throws once the guest must stop. */
  check(): void;
  /** Waits `ms` milliseconds, or less when the guest must stop (then throws). */
  sleep(ms: number): void;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** The signal of a guest nobody stops from outside: its sleeps just sleep. */
export const NEVER_STOPS: StopSignal = {
  check() {},
  sleep(ms) {
    Atomics.wait(sleeper, 0, 0, ms);
  },
};

/** Everything a guest run is given. */
export interface WasiOptions {
  args: readonly string[];
  /** `KEY=VALUE` pairs, in the order the guest sees them. */
  env: readonly (readonly [string, string])[];
  stdin: InputSource;
  stdout: OutputSink;
  stderr: OutputSink;
  preopens?: readonly Preopen[];
  /** How the guest is stopped from outside; by default it is not. */
  stop?: StopSignal;
  /** Most descriptors the guest may have open, stdio and preopens included (default 1,024). */
  maxDescriptors?: number;
}

/** Default for how many descriptors a guest may have open. */
export const DEFAULT_MAX_DESCRIPTORS = 1024;

/** The options of a host before any run: no arguments, environment, input or output. */
export function idleOptions(): WasiOptions {
  return { args: [], env: [], stdin: new BytesSource(NO_BYTES), stdout: DISCARD, stderr: DISCARD };
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

/** One guest's WASI state. */
export class WasiState {
  /** Guest linear memory, attached once the instance exists. */
  readonly memory = new GuestMemory();
  /** Descriptor table; index is the guest fd, `undefined` a closed slot. */
  fds: (Descriptor | undefined)[] = [];
  /** Arguments, NUL-terminated UTF-8. */
  args: CStrings = NO_STRINGS;
  /** Environment as `KEY=VALUE`, NUL-terminated UTF-8. */
  env: CStrings = NO_STRINGS;
  /** How the guest is stopped from outside (see {@link StopSignal}). */
  stop: StopSignal = NEVER_STOPS;
  /** Most descriptors the guest may have open. */
  maxDescriptors = DEFAULT_MAX_DESCRIPTORS;
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
    this.stop = options.stop ?? NEVER_STOPS;
    this.maxDescriptors = options.maxDescriptors ?? DEFAULT_MAX_DESCRIPTORS;
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

  /**
   * Puts a descriptor in the lowest free slot and returns its fd; `MFILE` (after closing the
   * descriptor) when the guest has as many open as it may, `NFILE` when the process has few
   * left: the server's own descriptors are not the guests' to exhaust.
   */
  allocate(descriptor: Descriptor): number {
    // The process's last descriptors are not the guests' either, all runs together.
    if (!roomForGuestDescriptor()) {
      descriptor.close();
      throw new WasiError(Errno.NFILE);
    }
    let fd = this.fds.indexOf(undefined);
    if (fd === -1) {
      if (this.fds.length >= this.maxDescriptors) {
        descriptor.close();
        throw new WasiError(Errno.MFILE);
      }
      fd = this.fds.length;
    }
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
}
