/**
 * The WASI preview1 host: a guest's state (see state.ts) with the import objects that expose
 * it under `wasi_snapshot_preview1` and `wasi_unstable`. It knows nothing of HTTP: callers
 * hand it bytes and sinks.
 * @module
 */

import type { CallTable } from "./syscall.ts";
import type { EffectTable } from "./effects.ts";
import { PREVIEW1_LAYOUT, type SnapshotLayout } from "./layout.ts";
import { PREVIEW0_LAYOUT } from "./preview0.ts";
import { NEVER_STOPS, WasiState } from "./state.ts";
import { ARGS_ENVIRON_EFFECTS, argsEnvironCalls } from "./calls/args_environ.ts";
import { FD_EFFECTS, fdCalls } from "./calls/fd.ts";
import { PATH_EFFECTS, pathCalls } from "./calls/path.ts";
import { CLOCK_RANDOM_EFFECTS, clockRandomCalls } from "./calls/clock_random.ts";
import { PROC_EFFECTS, procCalls } from "./calls/proc.ts";
import { POLL_EFFECTS, pollCalls } from "./calls/poll.ts";
import { SOCK_EFFECTS, sockCalls } from "./calls/sock.ts";

/** Which of the two WASI snapshots a call set is for; their layouts differ in a few places. */
export type Snapshot = "preview0" | "preview1";

/** The import module name of each snapshot. */
export const SNAPSHOT_MODULES: Record<Snapshot, string> = {
  preview1: "wasi_snapshot_preview1",
  preview0: "wasi_unstable",
};

/** Where each snapshot's records differ: preview 0 is preview1 with these layouts. */
const SNAPSHOT_LAYOUTS: Record<Snapshot, SnapshotLayout> = {
  preview1: PREVIEW1_LAYOUT,
  preview0: PREVIEW0_LAYOUT,
};

/** The effect of every call (the same under both snapshots), by import name. */
export const CALL_EFFECTS: EffectTable = {
  ...ARGS_ENVIRON_EFFECTS,
  ...FD_EFFECTS,
  ...PATH_EFFECTS,
  ...CLOCK_RANDOM_EFFECTS,
  ...PROC_EFFECTS,
  ...POLL_EFFECTS,
  ...SOCK_EFFECTS,
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

/** One guest's WASI state and its imports. */
export class WasiHost extends WasiState {
  /**
   * The import object: every call under each requested snapshot's module name. When this
   * host was made with a stop signal, every call checks it first, so that a stopped guest
   * can do nothing more.
   */
  imports(snapshots: readonly Snapshot[] = ["preview1", "preview0"]): WebAssembly.Imports {
    const imports: WebAssembly.Imports = {};
    for (const snapshot of snapshots) {
      const calls = this.#calls(snapshot);
      imports[SNAPSHOT_MODULES[snapshot]] = this.stop === NEVER_STOPS
        ? calls
        : this.#checked(calls);
    }
    return imports;
  }

  #checked(calls: CallTable): CallTable {
    const stop = this.stop;
    const checked: CallTable = {};
    for (const [name, call] of Object.entries(calls)) {
      const run = call as (...args: unknown[]) => number;
      checked[name] = (...args: unknown[]) => {
        stop.check();
        return run(...args);
      };
    }
    return checked;
  }

  #calls(snapshot: Snapshot): CallTable {
    const layout = SNAPSHOT_LAYOUTS[snapshot];
    return {
      ...argsEnvironCalls(this),
      ...fdCalls(this, layout),
      ...pathCalls(this, layout),
      ...clockRandomCalls(this),
      ...procCalls(),
      ...pollCalls(this, layout),
      ...sockCalls(this),
    } as CallTable;
  }
}
