/**
 * The server's own log: one line per event on stderr, so stdout stays the route table and
 * the ready line.
 * @module
 */

/** Where the server reports problems and events. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** A logger that writes `level: message` lines to stderr. */
export const stderrLogger: Logger = {
  info: (message) => console.error(`info: ${message}`),
  warn: (message) => console.error(`warn: ${message}`),
  error: (message) => console.error(`error: ${message}`),
};
