import * as assert from 'uvu/assert';
import { BuilderError } from '../../lib/errors.ts';

/** Awaits `promise` and asserts it fails with a BuilderError of `code`; returns the error. */
export async function rejectsWith(promise: Promise<unknown>, code: string): Promise<BuilderError> {
  try {
    await promise;
  } catch (error) {
    assert.instance(error, BuilderError, String(error));
    assert.is((error as BuilderError).code, code, (error as Error).message);
    return error as BuilderError;
  }
  return assert.unreachable(`expected ${code}, nothing was thrown`) as never;
}
