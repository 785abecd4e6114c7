// Typed failures of reading a Function and turning its source into files. Every one of them is
// the user's to fix except a download that failed for reasons on the network or the server side.
import { BuilderError, type BuilderErrorOptions, type ErrorKind } from '../errors.ts';

/** A field of a Function is missing or malformed; `details` name the function and the field. */
export class FunctionInvalidError extends BuilderError {
  readonly function: string | undefined;
  readonly field: string;

  /** `location` says where in a multi-document input the Function is, e.g. "document 2". */
  constructor(fn: string | undefined, field: string, expected: string, options: BuilderErrorOptions & { location?: string } = {}) {
    const subject = [fn === undefined ? undefined : `function ${fn}`, options.location ? `(${options.location})` : undefined]
      .filter(Boolean)
      .join(' ');
    super('E_FUNCTION_INVALID', 'user', `${subject === '' ? '' : `${subject}: `}${field}: ${expected}`, {
      cause: options.cause,
      details: { function: fn, field, ...(options.location ? { location: options.location } : {}), ...options.details },
    });
    this.function = fn;
    this.field = field;
  }
}

/**
 * The Function text, or an inline field of it, is past its size limit (FUNCTION_INPUT_LIMITS):
 * refused before it is parsed or decoded, so that memory stays proportional to a sane input.
 */
export class FunctionTooLargeError extends BuilderError {
  /** `size` undefined: more than the limit was seen, and the rest was not read. */
  constructor(fn: string | undefined, field: string, size: number | undefined, limit: number, hint: string) {
    const what = size === undefined ? 'more than' : `${size} bytes, more than`;
    super('E_FUNCTION_TOO_LARGE', 'user', `${fn === undefined ? '' : `function ${fn}: `}${field} is ${what} the limit of ${limit} bytes; ${hint}`, {
      details: { function: fn, field, size, limit },
    });
  }
}

/** `spec.checksum` does not match the bytes of the source. */
export class ChecksumMismatchError extends BuilderError {
  constructor(fn: string, expected: string, actual: string) {
    super(
      'E_CHECKSUM_MISMATCH',
      'user',
      `function ${fn}: spec.checksum is ${expected} but the source bytes hash to ${actual}; ` +
        'update spec.checksum or fix spec.function',
      { details: { function: fn, field: 'spec.checksum', expected, actual } },
    );
  }
}

/** An archive entry could escape the function root, is not a plain file, or the archive is a bomb. */
export class ArchiveUnsafeError extends BuilderError {
  constructor(fn: string, entry: string, reason: string) {
    super('E_ARCHIVE_UNSAFE', 'user', `function ${fn}: archive entry ${JSON.stringify(entry)} ${reason}`, {
      details: { function: fn, entry, reason },
    });
  }
}

/** The source bytes are not what the content type says (bad base64, not a zip, corrupt tar). */
export class SourceInvalidError extends BuilderError {
  constructor(fn: string, message: string, options: BuilderErrorOptions = {}) {
    super('E_SOURCE_INVALID', 'user', `function ${fn}: ${message}`, {
      ...options,
      details: { function: fn, ...options.details },
    });
  }
}

/**
 * A `url` source could not be fetched. A 4xx answer is the user's (wrong URL, no access); a
 * network failure, a timeout or a 5xx may pass on a retry.
 */
export class SourceDownloadError extends BuilderError {
  constructor(kind: ErrorKind, message: string, options: BuilderErrorOptions = {}) {
    super('E_SOURCE_DOWNLOAD', kind, message, options);
  }
}

/** A `url` source is larger than the download limit. */
export class SourceTooLargeError extends BuilderError {
  constructor(message: string, options: BuilderErrorOptions = {}) {
    super('E_SOURCE_TOO_LARGE', 'user', message, options);
  }
}

/**
 * A `url` source, or a redirect it answered with, leads to an address or scheme a build must not
 * fetch from: loopback, link-local (cloud metadata), private networks, or anything but http(s).
 */
export class SourceUrlRefusedError extends BuilderError {
  constructor(fn: string, message: string, details: Record<string, unknown>) {
    super('E_SOURCE_URL_REFUSED', 'user', `function ${fn}: spec.function: ${message}`, {
      details: { function: fn, field: 'spec.function', ...details },
    });
  }
}
