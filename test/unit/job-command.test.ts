// The `job` command in process, configured only through the environment (no mounted files): the
// Function from BUILDER_FUNCTION, the outcome in the file BUILDER_TERMINATION_LOG names. A Function
// that fails validation never reaches Docker or a registry, so no rig is needed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { main } from '../../cli/main.ts';

let dir: string;

test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fib-job-command-'));
});

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const BAD_FUNCTION = JSON.stringify({
  apiVersion: 'kubeless.io/v1beta1',
  kind: 'Function',
  metadata: { name: 'env-bad', namespace: 'team-a' },
  spec: { handler: 'no-dot-here', runtime: 'nodejs24', function: 'module.exports = {}' },
});

async function runJob(env: Record<string, string>): Promise<{ code: number; log: Record<string, any>[]; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const none = join(dir, 'not-mounted');
  const code = await main(['job'], {
    stdin: new PassThrough(),
    stdout,
    stderr,
    // Nothing from the test's own environment: what the Job's container would be given, no more.
    env: { BUILDER_CONFIG_DIR: none, BUILDER_SECRET_DIR: none, BUILDER_REGISTRY: '127.0.0.1:9/functions', ...env },
    cwd: dir,
    signal: new AbortController().signal,
  });
  return { code, log: out.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, any>), stderr: err };
}

test('BUILDER_FUNCTION with a bad handler: exit 2, and the error JSON in the BUILDER_TERMINATION_LOG file', async () => {
  const terminationLog = join(dir, 'termination-log');
  const run = await runJob({ BUILDER_FUNCTION: BAD_FUNCTION, BUILDER_TERMINATION_LOG: terminationLog });
  assert.is(run.code, 2, JSON.stringify(run.log));
  const written = JSON.parse(readFileSync(terminationLog, 'utf8'));
  assert.equal(Object.keys(written), ['error']);
  assert.is(written.error.code, 'E_FUNCTION_INVALID');
  assert.is(written.error.kind, 'user');
  assert.match(written.error.message, 'spec.handler');
  assert.is(run.log.find((line) => line.event === 'inputs')?.sources.function, 'env BUILDER_FUNCTION');
  assert.is(run.log.find((line) => line.event === 'failed')?.code, 'E_FUNCTION_INVALID');
});

test('an unwritable BUILDER_TERMINATION_LOG is warned about and does not change the exit code', async () => {
  const terminationLog = join(dir, 'no-such-dir', 'termination-log');
  const run = await runJob({ BUILDER_FUNCTION: BAD_FUNCTION, BUILDER_TERMINATION_LOG: terminationLog });
  assert.is(run.code, 2, JSON.stringify(run.log));
  assert.not.ok(existsSync(terminationLog));
  const warning = run.log.find((line) => line.event === 'termination-log-unwritable');
  assert.is(warning?.level, 'warn');
  assert.is(warning?.path, terminationLog);
  assert.is(run.log.find((line) => line.event === 'failed')?.code, 'E_FUNCTION_INVALID', 'the outcome is still logged');
});

test('BUILDER_TAG that the inputs do not give: exit 2 with E_TAG_MISMATCH before any registry is asked', async () => {
  // nodejs14 is pinned by digest in the default catalog, so the tag is computed offline; the
  // registry (127.0.0.1:9) answers nothing, so reaching it would end in exit 3 instead.
  const good = JSON.stringify({
    apiVersion: 'kubeless.io/v1beta1',
    kind: 'Function',
    metadata: { name: 'moved', namespace: 'team-a' },
    spec: { handler: 'handler.hello', runtime: 'nodejs14', function: 'module.exports = { hello: () => "hi" }' },
  });
  const terminationLog = join(dir, 'termination-log-tag');
  const run = await runJob({ BUILDER_FUNCTION: good, BUILDER_TAG: '0'.repeat(64), BUILDER_TERMINATION_LOG: terminationLog });
  assert.is(run.code, 2, JSON.stringify(run.log));
  assert.is(JSON.parse(readFileSync(terminationLog, 'utf8')).error.code, 'E_TAG_MISMATCH');
  assert.is(run.log.find((line) => line.event === 'inputs')?.sources.tag, 'env BUILDER_TAG');
  const failed = run.log.find((line) => line.event === 'failed');
  assert.is(failed?.details.expectedTag, '0'.repeat(64));
  assert.match(failed?.details.tag, /^[0-9a-f]{64}$/);
});

test.run();
