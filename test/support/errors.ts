import * as assert from 'uvu/assert';
import { BuilderError } from '../../lib/errors.ts';

type ErrorClass<T extends BuilderError> = new (...args: never[]) => T;

/**
 * Awaits `promise` and asserts it fails with a `type` (by default any BuilderError) of `code`; returns
 * the error, typed as that class so a test can go on to check its own fields.
 */
export async function rejectsWith<T extends BuilderError = BuilderError>(
  promise: Promise<unknown>,
  code: string,
  type: ErrorClass<T> = BuilderError as unknown as ErrorClass<T>,
): Promise<T> {
  try {
    await promise;
  } catch (error) {
    assert.instance(error, type, String(error));
    assert.is((error as T).code, code, (error as Error).message);
    return error as T;
  }
  return assert.unreachable(`expected ${code}, nothing was thrown`) as never;
}
