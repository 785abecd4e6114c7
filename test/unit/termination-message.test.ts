// The termination message as both ends see it: what the Job's entrypoint encodes (cut to the kubelet's
// 4096 bytes) is what the runner decodes from the pod's status, and text that is not the builder's
// (the kubelet's fallback to the log tail) decodes to nothing rather than to a wrong outcome.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeJobFailure, decodeJobResult, encodeTerminationMessage } from '../../lib/kubernetes/termination-message.ts';

const RESULT = { image: 'h/r:t', digest: `sha256:${'a'.repeat(64)}`, reference: `h/r@sha256:${'a'.repeat(64)}`, cached: true };

test('the termination message fits the kubelet limit and stays JSON', () => {
  const long = encodeTerminationMessage({ error: { code: 'E_BUILD_FAILED', kind: 'user', message: 'npm ERR! '.repeat(2000) } });
  assert.ok(Buffer.byteLength(long) <= 4096, String(Buffer.byteLength(long)));
  const parsed = JSON.parse(long);
  assert.is(parsed.error.code, 'E_BUILD_FAILED');
  assert.ok(parsed.error.message.endsWith('…'));
  assert.equal(JSON.parse(encodeTerminationMessage(RESULT)), RESULT);
});

test('the runner reads back what the entrypoint wrote: a result, and a failure cut to the limit', () => {
  assert.equal(decodeJobResult(encodeTerminationMessage(RESULT)), RESULT);
  assert.equal(decodeJobResult(encodeTerminationMessage({ ...RESULT, cached: false })), { ...RESULT, cached: false });
  const failure = decodeJobFailure(encodeTerminationMessage({ error: { code: 'E_BUILD_FAILED', kind: 'user', message: 'npm ERR! '.repeat(2000) } }));
  assert.is(failure?.code, 'E_BUILD_FAILED');
  assert.is(failure?.kind, 'user');
  assert.ok(failure?.message.startsWith('npm ERR! npm ERR!'));
  assert.is(decodeJobResult(encodeTerminationMessage({ error: { code: 'E_X', kind: 'user', message: 'm' } })), undefined);
});

test('text that is not the builder\'s decodes to nothing', () => {
  const logTail = 'step one\nhandler is bad\n';
  assert.is(decodeJobResult(logTail), undefined);
  assert.is(decodeJobFailure(logTail), undefined);
  assert.is(decodeJobFailure(''), undefined);
  assert.is(decodeJobFailure('null'), undefined);
  // A result missing a field is not a result: the runner must not report an image it cannot name.
  assert.is(decodeJobResult(JSON.stringify({ image: 'h/r:t', digest: RESULT.digest })), undefined);
  // A result without "cached" was not found in the registry.
  assert.is(decodeJobResult(JSON.stringify({ image: 'h/r:t', digest: RESULT.digest, reference: RESULT.reference }))?.cached, false);
});

test.run();
