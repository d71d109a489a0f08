/**
 * What a compiled module's imports say about it, worked out once per module: which WASI
 * snapshots it uses, whether it makes outbound HTTP requests, whether it can read its argv
 * and environment at all.
 * @module
 */

import { type GuestInputs, inputsOf, type Snapshot, snapshotsOf } from "../wasi/host.ts";
import { HTTP_MODULE } from "../outbound_http/names.ts";
import { PREEMPT_MODULE } from "../wasm/contract.ts";
import { componentParts } from "./module_component.ts";

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
      // A component's outbound requests wait on the network as wasi_experimental_http's do.
      usesHttp: imports.some((i) => i.module === HTTP_MODULE) ||
        componentParts(module)?.async === true,
      reads: inputsOf(module),
      preemptible: imports.some((i) => i.module === PREEMPT_MODULE),
    };
    infos.set(module, found);
  }
  return found;
}

/**
 * What a runner needs to reuse instances of a preemptible module (see wasm/metering.ts): the
 * mutable globals it exports to be put back, why it cannot be reused, if so, and whether it
 * has a start function. Learnt when the module is rewritten, so it travels with the module.
 */
export interface ReuseInfo {
  stateGlobals: number[];
  notReusable?: string;
  hasStart: boolean;
}

const reuseInfos = new WeakMap<WebAssembly.Module, ReuseInfo>();

/** Records what the rewrite learnt about `module` (the module cache does, as it compiles). */
export function setReuseInfo(module: WebAssembly.Module, info: ReuseInfo): void {
  reuseInfos.set(module, info);
}

/** What is known about reusing instances of `module`; undefined: make one for every run. */
export function reuseInfo(module: WebAssembly.Module): ReuseInfo | undefined {
  return reuseInfos.get(module);
}
