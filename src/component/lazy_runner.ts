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

/** Runs a component through a {@link ComponentRunner} loaded when first needed. */
export class LazyComponentRunner {
  #runner: Promise<ComponentRunner> | undefined;

  constructor(readonly module: WebAssembly.Module, readonly parts: ComponentParts) {}

  /** No instance is kept between runs. */
  get keptBytes(): number {
    return 0;
  }
  letGo(): void {}

  /** See {@link ComponentRunner.run}. */
  async run(
    wasi: WasiOptions,
    control: GuestControl,
    request?: HttpRequestHead,
  ): Promise<GuestEnd> {
    this.#runner ??= import("./runner.ts").then((m) =>
      new m.ComponentRunner(this.module, this.parts)
    );
    return await (await this.#runner).run(wasi, control, request);
  }
}
