import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BuilderError, EXIT_INFRASTRUCTURE_ERROR, EXIT_INTERNAL_ERROR, EXIT_USER_ERROR, exitCodeFor } from '../lib/index.ts';

test('exit codes tell a user error from an infrastructure failure', () => {
  assert.is(exitCodeFor(new BuilderError('E_X', 'user', 'bad')), EXIT_USER_ERROR);
  assert.is(exitCodeFor(new BuilderError('E_Y', 'infrastructure', 'down')), EXIT_INFRASTRUCTURE_ERROR);
  assert.is(exitCodeFor(new Error('bug')), EXIT_INTERNAL_ERROR);
  assert.is.not(EXIT_USER_ERROR, EXIT_INFRASTRUCTURE_ERROR);
});

test('errors carry their code and class name', () => {
  class SampleError extends BuilderError {}
  const error = new SampleError('E_SAMPLE', 'user', 'the field "spec.handler" is missing');
  assert.is(error.name, 'SampleError');
  assert.is(error.code, 'E_SAMPLE');
  assert.equal(error.toJSON().code, 'E_SAMPLE');
});

test.run();
