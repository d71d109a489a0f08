/**
 * `-e K=V` values and `--env-file` dotenv files (docs/wagi.md, "Command line").
 * @module
 */

/** A bad `-e` value or env-file line; the message names it. */
export class EnvError extends Error {
  override name = "EnvError";
}

/** Strips one pair of matching surrounding quotes. */
function unquote(value: string): string {
  if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0]) {
    return value.slice(1, -1);
  }
  return value;
}

/** Parses one `-e` value: split at the first `=`; an empty key is an error, an empty value is fine. */
export function parseEnvAssignment(text: string): [string, string] {
  const eq = text.indexOf("=");
  if (eq === -1) throw new EnvError(`-e '${text}': expected KEY=VALUE`);
  const key = text.slice(0, eq);
  if (key === "") throw new EnvError(`-e '${text}': the variable name is empty`);
  return [key, unquote(text.slice(eq + 1))];
}

/**
 * Parses a dotenv file: `K=V`, `export K=V`, `K = "v"`, blank lines and `#` comments. Any other
 * line is an error naming `file:line`.
 */
export function parseEnvFile(text: string, file: string): [string, string][] {
  const pairs: [string, string][] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const match = line.match(/^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$/);
    if (!match) {
      throw new EnvError(`${file}:${i + 1}: expected KEY=VALUE, got ${JSON.stringify(raw)}`);
    }
    pairs.push([match[1], unquote(match[2].trim())]);
  });
  return pairs;
}
