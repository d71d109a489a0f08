/**
 * A component's runner as a pool worker holds it: the runner (and the host's WASI 0.2 code)
 * is loaded at the component's first run, so that a worker serving WAGI modules only never
 * loads any of it.
 * @module
 */

import type { GuestControl, GuestEnd } from "../run/guest.ts";
import type { WasiOptions } from "../wasi/state.ts";
import type { ComponentParts, HttpRequestHead } from "../run/module_component.ts";
import type { ComponentRunner } from "./runner.ts";
import type { OutboundOptions } from "../outbound_http/names.ts";

/** Runs a component through a {@link ComponentRunner} loaded when first needed. */
export class LazyComponentRunner {
  #runner: Promise<ComponentRunner> | undefined;
  #loaded: ComponentRunner | undefined;

  constructor(readonly module: WebAssembly.Module, readonly parts: ComponentParts) {}

  /** Linear memory of the instance kept for the next run (0 when none is). */
  get keptBytes(): number {
    return this.#loaded?.keptBytes ?? 0;
  }
  /** Lets go of the kept instance. */
  letGo(): void {
    this.#loaded?.letGo();
  }

  /** See {@link ComponentRunner.run}. */
  async run(
    wasi: WasiOptions,
    control: GuestControl,
    request?: HttpRequestHead,
    outbound?: OutboundOptions,
  ): Promise<GuestEnd> {
    this.#runner ??= import("./runner.ts").then((m) =>
      this.#loaded = new m.ComponentRunner(this.module, this.parts)
    );
    return await (await this.#runner).run(wasi, control, request, outbound);
  }
}
