import { BuilderError, type BuilderErrorOptions } from '../errors.ts';

/** The runtime-images JSON is malformed; the message names the entry and field. */
export class CatalogInvalidError extends BuilderError {
  constructor(field: string, expected: string, options: BuilderErrorOptions = {}) {
    super('E_CATALOG_INVALID', 'user', `runtime catalog: ${field}: ${expected}`, {
      ...options,
      details: { field, ...options.details },
    });
  }
}

/** The Function names a runtime that the catalog does not have; the message lists those it has. */
export class RuntimeUnknownError extends BuilderError {
  constructor(runtime: string, available: string[], fn?: string) {
    super(
      'E_RUNTIME_UNKNOWN',
      'user',
      `${fn === undefined ? '' : `function ${fn}: `}spec.runtime ${JSON.stringify(runtime)} is not in the runtime catalog; ` +
        `available: ${available.length === 0 ? '(none)' : available.join(', ')}`,
      { details: { function: fn, field: 'spec.runtime', runtime, available } },
    );
  }
}
