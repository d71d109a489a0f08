/**
 * Components in the composition: the module cache's component loader, and the runners that try
 * a component's runs on the server's thread first. Both import the component code when the
 * first component needs it: a server whose configuration has none loads none of it (nor jco).
 * @module
 */

import { type ComponentLoader, componentParts } from "../run/module_component.ts";
import type { InlineRun, VariantSource } from "../inline/executor.ts";

/** Loads a component through component/load.ts, importing it on first use. */
export const loadComponentLazily: ComponentLoader = async (bytes, digest, options) => {
  const { loadComponent } = await import("../component/load.ts");
  return await loadComponent(bytes, digest, options);
};

/**
 * `variants`, plus runners on the server's thread for components (a run that is about to make an
 * outbound request is redone in the pool): made at a component's first run, which waits for it
 * (as for a WAGI module's variant: a pool worker would have to load the component too, and a
 * JavaScript engine takes tens of MiB in each).
 */
export function withComponents(variants: VariantSource): VariantSource {
  /** A component's runner, its preparation in progress, or "none" when it could not be made. */
  const runners = new WeakMap<WebAssembly.Module, InlineRun | Promise<void> | "none">();
  return {
    variantOf: (module) => variants.variantOf(module),
    preparing(module) {
      const found = runners.get(module);
      return found instanceof Promise ? found : variants.preparing?.(module);
    },
    runnerOf(module) {
      const found = runners.get(module);
      if (found !== undefined) {
        return found instanceof Promise || found === "none" ? undefined : found;
      }
      const parts = componentParts(module);
      // One that waits under JSPI runs here through its code without it (see inline.ts).
      if (!parts || (parts.async && !parts.firstTry)) return undefined;
      runners.set(
        module,
        import("../component/inline.ts").then(async ({ InlineComponentRunner }) => {
          const runner = new InlineComponentRunner(module, parts);
          await runner.prepare();
          runners.set(module, runner);
        }).catch(() => {
          // Its runs go to the pool.
          runners.set(module, "none");
        }),
      );
      return undefined;
    },
  };
}
