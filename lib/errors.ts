/**
 * Every failure the library reports is a BuilderError with a stable `code`.
 *
 * `kind` tells a caller whether retrying can help: a `user` error (bad spec, unsafe archive,
 * checksum mismatch, denied credentials) fails the same way every time, an `infrastructure`
 * error (daemon or registry down, timeout) may pass on a retry. The Job's exit code and the
 * CLI's exit code are derived from it, so a podFailurePolicy retries only the latter.
 */
export type ErrorKind = 'user' | 'infrastructure';

export interface BuilderErrorOptions {
  cause?: unknown;
  /** Extra machine-readable facts (field names, hosts, steps); never secrets. */
  details?: Record<string, unknown>;
}

export class BuilderError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly details: Record<string, unknown>;

  constructor(code: string, kind: ErrorKind, message: string, options: BuilderErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.kind = kind;
    this.details = options.details ?? {};
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, kind: this.kind, message: this.message, ...this.details };
  }
}

/** Exit codes of the CLI and the Job: a podFailurePolicy fails the Job at once on EXIT_USER_ERROR. */
export const EXIT_OK = 0;
export const EXIT_INTERNAL_ERROR = 1;
export const EXIT_USER_ERROR = 2;
export const EXIT_INFRASTRUCTURE_ERROR = 3;

export function exitCodeFor(error: unknown): number {
  if (error instanceof BuilderError) {
    return error.kind === 'user' ? EXIT_USER_ERROR : EXIT_INFRASTRUCTURE_ERROR;
  }
  return EXIT_INTERNAL_ERROR;
}
