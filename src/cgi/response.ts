/**
 * CGI → Response: a module's stdout (headers, blank line, body) as an HTTP response (spec §6).
 * @module
 */

/** The text WAGI answers when a module gives neither `Content-Type`, `Location` nor `Status`. */
export const MISSING_CONTENT_TYPE = "Exactly one of 'location' or 'content-type' must be specified";

/** A parsed CGI output: the response, or an error status with a reason for the log. */
export interface CgiOutput {
  response: Response;
  /** Problems to log: skipped header lines, or why the response is an error. */
  warnings: string[];
}

const NULL_BODY_STATUSES = new Set([101, 103, 204, 205, 304]);

/** Splits stdout into header lines and body: the first empty line (`\n` or `\r\n`) ends the headers. */
export function splitOutput(
  stdout: Uint8Array<ArrayBuffer>,
): { headerLines: string[]; body: Uint8Array<ArrayBuffer> } {
  const decoder = new TextDecoder();
  const headerLines: string[] = [];
  let start = 0;
  while (start < stdout.length) {
    const newline = stdout.indexOf(0x0a, start);
    if (newline === -1) break;
    // CRs in the header part are dropped, wherever they stand.
    const line = decoder.decode(stdout.subarray(start, newline)).replaceAll("\r", "");
    start = newline + 1;
    if (line === "") return { headerLines, body: stdout.subarray(start) };
    headerLines.push(line);
  }
  // No blank line: the whole output is the body and there are no headers.
  return { headerLines: [], body: stdout };
}

function errorOutput(status: number, body: string, warnings: string[]): CgiOutput {
  return {
    response: new Response(body, { status, headers: { "content-type": "text/plain" } }),
    warnings,
  };
}

/** Turns a module's stdout into a Response, as WAGI does, with our fixes (spec §6). */
export function parseCgiOutput(stdout: Uint8Array<ArrayBuffer>): CgiOutput {
  const { headerLines, body } = splitOutput(stdout);
  const warnings: string[] = [];
  const headers = new Headers();
  let status: number | undefined;
  let hasContentType = false;
  let hasLocation = false;

  for (const line of headerLines) {
    const colon = line.indexOf(":");
    if (colon === -1) {
      warnings.push(`header line without ':' skipped: ${JSON.stringify(line)}`);
      continue;
    }
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    const lower = name.toLowerCase();
    if (lower === "status") {
      const code = value.match(/^\d+/);
      const parsed = code ? Number(code[0]) : NaN;
      if (!(parsed >= 200 && parsed <= 599)) {
        return errorOutput(502, "Bad Gateway\n", [
          ...warnings,
          `module sent an unusable Status header: ${JSON.stringify(value)}`,
        ]);
      }
      status = parsed;
      continue;
    }
    try {
      headers.append(name, value);
    } catch {
      return errorOutput(500, "Internal Server Error\n", [
        ...warnings,
        `module sent an invalid header: ${JSON.stringify(line)}`,
      ]);
    }
    if (lower === "content-type") hasContentType = true;
    if (lower === "location") hasLocation = true;
  }

  if (!hasContentType && !hasLocation && status === undefined) {
    return errorOutput(500, MISSING_CONTENT_TYPE, [...warnings, MISSING_CONTENT_TYPE]);
  }
  const finalStatus = status ?? (hasLocation ? 302 : 200);
  const responseBody = NULL_BODY_STATUSES.has(finalStatus) ? null : body;
  return { response: new Response(responseBody, { status: finalStatus, headers }), warnings };
}
