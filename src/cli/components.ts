/**
 * The module cache's component loader, imported when the first component loads: a server
 * whose configuration has none loads none of the component code (nor jco).
 * @module
 */

import type { ComponentLoader } from "../run/module_component.ts";

/** Loads a component through component/load.ts, importing it on first use. */
export const loadComponentLazily: ComponentLoader = async (bytes, digest, options) => {
  const { loadComponent } = await import("../component/load.ts");
  return await loadComponent(bytes, digest, options);
};
