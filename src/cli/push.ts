/**
 * The `push` command: publish a module to an OCI registry in the wasm-to-oci layout that `oci:`
 * sources pull, so that users and tests need no other tool.
 * @module
 */

import { isAbsolute, join } from "../paths.ts";
import { dockerCredentials } from "../oci/credentials.ts";
import { parseOciReference } from "../oci/reference.ts";
import { RegistryClient, RegistryError } from "../oci/registry.ts";
import { hasWasmMagic, isWatText, watToWasm } from "../wasm/wat.ts";
import { UsageError } from "./serve_options.ts";

/** What `push` pushes, and where. */
export interface PushOptions {
  /** The module file. */
  modulePath: string;
  /** The `oci:` reference as given. */
  reference: string;
  insecureRegistries: string[];
}

/** The help text of `push`. */
export const PUSH_USAGE = `Usage: wagi-deno push MODULE.wasm oci:HOST[:PORT]/REPO:TAG [options]

  --insecure-registry HOST[:PORT]  push in plain HTTP (loopback registries always are)

Uploads the module (WebAssembly text is compiled first) as the single layer of media type
application/vnd.wasm.content.layer.v1+wasm, with an empty config, and tags the manifest.
Credentials come from the Docker config file ($DOCKER_CONFIG/config.json or
~/.docker/config.json) when the registry asks for them. Prints the pinned reference.
`;

/** Parses `push`'s arguments; relative paths resolve against `startDir`. */
export function parsePushArgs(args: readonly string[], startDir: string): PushOptions {
  const positional: string[] = [];
  const insecureRegistries: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--insecure-registry" || arg.startsWith("--insecure-registry=")) {
      const value = arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : args[++i];
      if (value === undefined) throw new UsageError(`--insecure-registry needs a value`);
      insecureRegistries.push(value);
    } else if (arg.startsWith("-")) {
      throw new UsageError(`unknown argument '${arg}'\n\n${PUSH_USAGE}`);
    } else positional.push(arg);
  }
  if (positional.length !== 2) {
    throw new UsageError(`push needs a module and an oci: reference\n\n${PUSH_USAGE}`);
  }
  const [module, reference] = positional;
  if (!reference.startsWith("oci:")) {
    throw new UsageError(
      `'${reference}': expected an oci: reference, e.g. oci:localhost:5000/hello:1`,
    );
  }
  return {
    modulePath: isAbsolute(module) ? module : join(startDir, module),
    reference,
    insecureRegistries,
  };
}

/** Pushes the module; prints the reference pinned to the manifest's digest. */
export async function pushCommand(options: PushOptions): Promise<number> {
  let ref;
  try {
    ref = parseOciReference(options.reference);
  } catch (error) {
    throw new UsageError(`'${options.reference}': ${(error as Error).message}`);
  }
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(options.modulePath);
  } catch (error) {
    throw new UsageError(`${options.modulePath}: cannot read: ${(error as Error).message}`);
  }
  if (isWatText(options.modulePath, bytes)) {
    bytes = await watToWasm(options.modulePath, new TextDecoder().decode(bytes));
  }
  if (!hasWasmMagic(bytes) || !WebAssembly.validate(bytes as Uint8Array<ArrayBuffer>)) {
    throw new UsageError(`${options.modulePath}: not a valid WebAssembly module`);
  }
  const client = new RegistryClient({
    insecure: options.insecureRegistries,
    credentials: (registry) => dockerCredentials(registry, (name) => Deno.env.get(name)),
  });
  const title = options.modulePath.slice(options.modulePath.lastIndexOf("/") + 1);
  let digest;
  try {
    digest = await client.push(ref, bytes, title);
  } catch (error) {
    if (!(error instanceof RegistryError)) throw error;
    console.error(`error: push: ${error.message}`);
    return 1;
  }
  console.log(
    `pushed oci:${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ""}@${digest}`,
  );
  return 0;
}
