// The command line as a user runs it: `function-image-builder build ... --json` and `tag`, in a
// child process, checked by exit code, stdout and stderr.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { stringify } from 'yaml';
import { createDisplay } from '../job/display.ts';
import { exec } from './support/docker.ts';
import { freePort } from './support/net.ts';
import { callBuiltFunction, functionObject, startPipelineRig, type PipelineRig } from './support/pipeline.ts';
import { startRegistry } from './support/registry.ts';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'job', 'cli.ts');
const FIXTURES = join(ROOT, 'fixtures', 'functions', 'runtimes');

let rig: PipelineRig;
let dir: string;
let files: { fn: string; badFn: string; runtimes: string; dockerConfig: string };

test.before(async () => {
  try {
    rig = await startPipelineRig('cli-build', ['anonymous']);
  } catch (error) {
    console.error('pipeline rig failed to start:', error);
    throw error;
  }
  dir = mkdtempSync(join(tmpdir(), 'fib-cli-build-'));
  const fn = functionObject('cli-hello', {
    handler: 'handler.hello',
    runtime: 'nodejs24',
    function: readFileSync(join(FIXTURES, 'nodejs-deps', 'handler.js'), 'utf8'),
    deps: readFileSync(join(FIXTURES, 'nodejs-deps', 'package.json'), 'utf8'),
  });
  const bad = functionObject('cli-bad', { handler: 'no-dot-here', runtime: 'nodejs24', function: 'module.exports = {}' });
  files = { fn: join(dir, 'function.yaml'), badFn: join(dir, 'bad.yaml'), runtimes: join(dir, 'runtime-images.json'), dockerConfig: join(dir, 'config.json') };
  writeFileSync(files.fn, stringify(fn));
  writeFileSync(files.badFn, stringify(bad));
  writeFileSync(files.runtimes, JSON.stringify(rig.catalog));
  writeFileSync(files.dockerConfig, rig.dockerConfigJson);
});

test.after(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await rig?.stop();
});

function cli(args: string[], options: { input?: string; env?: Record<string, string> } = {}) {
  // HOME points at an empty directory: no ~/.docker/config.json of the machine is picked up.
  return exec(process.execPath, [CLI, ...args], { input: options.input, env: { PATH: process.env.PATH ?? '', HOME: dir, ...options.env }, timeoutMs: 300_000 });
}

test('build --json prints the result and exits 0; progress goes to stderr as plain lines; a second run is cached', async () => {
  const registry = `${rig.targets.anonymous!.host}/cli`;
  const run = await cli(['build', files.fn, '--registry', registry, '--runtimes', files.runtimes, '--docker-config', files.dockerConfig, '--json']);
  assert.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout) as { image: string; tag: string; digest: string; reference: string; cached: boolean; timings: Record<string, number> };
  assert.is(result.cached, false);
  assert.match(result.reference, new RegExp(`^${registry}/cli-hello@sha256:[0-9a-f]{64}$`));
  assert.is(result.image, `${registry}/cli-hello:${result.tag}`);
  assert.ok((result.timings.totalMs ?? 0) > 0);
  assert.match(run.stderr, 'default/cli-hello: step 1/');
  assert.match(run.stderr, 'kubeless-npm-install: registry');
  assert.not.match(run.stderr, '\x1b[2K', 'no terminal control codes when stderr is not a terminal');
  assert.not.match(run.stderr + run.stdout, JSON.parse(rig.dockerConfigJson).auths[rig.source.host].password);

  const answer = await callBuiltFunction(result.reference, undefined, 'cli');
  assert.is(answer.text, 'hello cli, from fib-greeting 1.0.0');

  // Same Function on stdin: cached, and without --json just the reference on stdout.
  const again = await cli(['build', '-', '--registry', registry, '--runtimes', files.runtimes, '--docker-config', files.dockerConfig], { input: readFileSync(files.fn, 'utf8') });
  assert.is(again.code, 0, again.stderr);
  assert.is(again.stdout.trim(), result.reference);
  assert.match(again.stderr, 'exists already');

  const tag = await cli(['tag', files.fn, '--runtimes', files.runtimes, '--docker-config', files.dockerConfig, '--registry', registry]);
  assert.is(tag.code, 0, tag.stderr);
  assert.is(tag.stdout.trim(), result.image);
});

test('a bad spec exits 2 with the error naming the field; usage errors exit 2', async () => {
  const bad = await cli(['build', files.badFn, '--registry', `${rig.targets.anonymous!.host}/cli`, '--runtimes', files.runtimes, '--json']);
  assert.is(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, 'E_FUNCTION_INVALID');
  assert.match(bad.stderr, 'handler');
  assert.is(bad.stdout, '');
  const usage = await cli(['build', files.fn, '--no-such-option']);
  assert.is(usage.code, 2);
  assert.match(usage.stderr, 'E_USAGE');
  const none = await cli([]);
  assert.is(none.code, 2);
  const unknown = await cli(['frobnicate']);
  assert.is(unknown.code, 2);
  assert.match(unknown.stderr, 'unknown command "frobnicate"');
});

test('a stopped registry exits 3; so does a Docker Engine that does not answer', async () => {
  const stopped = await startRegistry('anonymous');
  await stopped.stop();
  const down = await cli(['build', files.fn, '--registry', `${stopped.host}/cli`, '--runtimes', files.runtimes, '--docker-config', files.dockerConfig]);
  assert.is(down.code, 3, down.stderr);
  assert.match(down.stderr, 'E_REGISTRY_UNREACHABLE');
  assert.match(down.stderr, stopped.host);

  const closed = await freePort();
  const fresh = join(dir, 'fresh.yaml');
  writeFileSync(fresh, readFileSync(files.fn, 'utf8').replace('hello', 'hi'));
  const noDaemon = await cli(['build', fresh, '--registry', `${rig.targets.anonymous!.host}/cli`, '--runtimes', files.runtimes, '--docker-config', files.dockerConfig], {
    env: { DOCKER_HOST: `tcp://127.0.0.1:${closed}` },
  });
  assert.is(noDaemon.code, 3, noDaemon.stderr);
  assert.match(noDaemon.stderr, 'E_DOCKER_UNAVAILABLE');
  assert.match(noDaemon.stderr, `tcp://127.0.0.1:${closed}`);
});

test('on a terminal the progress is one line updated in place', () => {
  let written = '';
  const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 60 });
  stream.on('data', (chunk: Buffer) => (written += chunk.toString()));
  const display = createDisplay(stream, 'default/fn');
  display.progress({ kind: 'phase', phase: 'build', message: 'building example' });
  display.progress({ kind: 'step', step: 1, steps: 3, instruction: 'FROM x' });
  display.progress({ kind: 'push', layer: 'a', status: 'Pushing', current: 5_000_000, total: 10_000_000 });
  display.finish();
  assert.is(written.split('\n').length, 1, 'no line breaks');
  assert.match(written, '\r\x1b[2Kdefault/fn: building example');
  assert.match(written, 'step 1/3 FROM x');
  assert.ok(written.split('\r').every((line) => line.length <= 60 + 4), 'lines fit the terminal');
});

test.run();
