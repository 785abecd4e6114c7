import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BuilderError, EXIT_INFRASTRUCTURE_ERROR, EXIT_INTERNAL_ERROR, EXIT_USER_ERROR, exitCodeFor } from '../../lib/errors.ts';

test('exit codes tell a user error from an infrastructure failure', () => {
  assert.is(exitCodeFor(new BuilderError('E_FUNCTION_INVALID', 'user', 'bad')), EXIT_USER_ERROR);
  assert.is(exitCodeFor(new BuilderError('E_REGISTRY_UNREACHABLE', 'infrastructure', 'down')), EXIT_INFRASTRUCTURE_ERROR);
  assert.is(exitCodeFor(new Error('bug')), EXIT_INTERNAL_ERROR);
  assert.is.not(EXIT_USER_ERROR, EXIT_INFRASTRUCTURE_ERROR);
});

test('errors carry their code and class name', () => {
  class SampleError extends BuilderError {}
  const error = new SampleError('E_FUNCTION_INVALID', 'user', 'the field "spec.handler" is missing');
  assert.is(error.name, 'SampleError');
  assert.is(error.code, 'E_FUNCTION_INVALID');
  assert.equal(error.toJSON().code, 'E_FUNCTION_INVALID');
});

test.run();
