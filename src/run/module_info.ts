/**
 * What a compiled module's imports say about it, worked out once per module: which WASI
 * snapshots it uses, whether it makes outbound HTTP requests, whether it can read its argv
 * and environment at all.
 * @module
 */

import { type GuestInputs, inputsOf, type Snapshot, snapshotsOf } from "../wasi/host.ts";
import { HTTP_MODULE } from "../outbound_http/experimental_http.ts";
import { PREEMPT_MODULE } from "../wasm/preemption.ts";

/** What a module imports, in the terms a runner needs. */
export interface ModuleInfo {
  /** The WASI snapshots it imports: only those call tables are built for it. */
  snapshots: Snapshot[];
  /** It imports outbound HTTP: its calls wait for the network (under JSPI). */
  usesHttp: boolean;
  /** Whether it can read argv and its environment: if not, neither is built for it. */
  reads: GuestInputs;
  /** It was made preemptible: it asks its host for fuel (see wasm/preemption.ts). */
  preemptible: boolean;
}

const infos = new WeakMap<WebAssembly.Module, ModuleInfo>();

/** The {@link ModuleInfo} of `module`. */
export function moduleInfo(module: WebAssembly.Module): ModuleInfo {
  let found = infos.get(module);
  if (!found) {
    const imports = WebAssembly.Module.imports(module);
    found = {
      snapshots: snapshotsOf(module),
      usesHttp: imports.some((i) => i.module === HTTP_MODULE),
      reads: inputsOf(module),
      preemptible: imports.some((i) => i.module === PREEMPT_MODULE),
    };
    infos.set(module, found);
  }
  return found;
}
