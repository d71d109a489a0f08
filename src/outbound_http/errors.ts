/**
 * The error codes of the `wasi_experimental_http` imports (docs/wagi.md, "Outbound HTTP").
 * @module
 */

/** Error codes returned by the outbound HTTP imports; 0 is success. */
export const HttpError = {
  SUCCESS: 0,
  INVALID_HANDLE: 1,
  MEMORY_NOT_FOUND: 2,
  MEMORY_ACCESS: 3,
  BUFFER_TOO_SMALL: 4,
  HEADER_NOT_FOUND: 5,
  UTF8: 6,
  DESTINATION_NOT_ALLOWED: 7,
  INVALID_METHOD: 8,
  INVALID_ENCODING: 9,
  INVALID_URL: 10,
  REQUEST_ERROR: 11,
  RUNTIME_ERROR: 12,
  TOO_MANY_SESSIONS: 13,
} as const;

/** One of the values of {@link HttpError}. */
export type HttpErrorCode = (typeof HttpError)[keyof typeof HttpError];

/** Thrown inside the imports to return a code to the guest. */
export class OutboundHttpError extends Error {
  constructor(readonly code: HttpErrorCode, message = `outbound HTTP error ${code}`) {
    super(message);
  }
}
