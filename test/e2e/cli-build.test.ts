// The command line as a user runs it: `function-image-builder build ... --json` and `tag`, in a
// child process, checked by exit code, stdout and stderr.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { stringify } from 'yaml';
import { createDisplay } from '../../cli/display.ts';
import { docker, exec } from '../support/docker.ts';
import { freePort } from '../support/net.ts';
import { callBuiltFunction, functionObject, hasLocalImage, startPipelineRig, type PipelineRig } from '../support/pipeline.ts';
import { startRegistry } from '../support/registry.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'cli', 'main.ts');
const FIXTURES = join(ROOT, 'fixtures', 'functions', 'runtimes');

let rig: PipelineRig;
let dir: string;
let files: { fn: string; badFn: string; runtimes: string; dockerConfig: string };

test.before(async () => {
  try {
    rig = await startPipelineRig('cli-build', ['anonymous', 'tls']);
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

test('a JSON Function with a key given twice exits 2 naming the key; nothing is pushed', async () => {
  const fn = functionObject('cli-dup', { handler: 'handler.hello', runtime: 'nodejs24', function: 'module.exports = { hello: () => "read" }' });
  const text = JSON.stringify(fn).replace('"spec":{', '"spec":{"function":"module.exports = { hello: () => \\"built\\" }",');
  const path = join(dir, 'duplicate.json');
  writeFileSync(path, text);
  const registry = `${rig.targets.anonymous!.host}/cli-dup`;
  const run = await cli(['build', path, '--registry', registry, '--runtimes', files.runtimes, '--docker-config', files.dockerConfig, '--json']);
  assert.is(run.code, 2, run.stderr);
  assert.match(run.stderr, 'E_FUNCTION_INVALID');
  assert.match(run.stderr, 'spec.function: is given twice in one JSON object');
  assert.is(run.stdout, '');
  const tags = await fetch(`${rig.targets.anonymous!.url}/v2/cli-dup/cli-dup/tags/list`);
  assert.is(tags.status, 404, 'nothing reached the registry');
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

test('--no-push builds into the local daemon only: the reference is the local name, the image is there, the registry has no tag', async () => {
  const registry = `${rig.targets.anonymous!.host}/cli-local`;
  const run = await cli(['build', files.fn, '--no-push', '--registry', registry, '--runtimes', files.runtimes, '--docker-config', files.dockerConfig, '--json']);
  assert.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout) as { image: string; reference: string; pushed: boolean; cached: boolean; digest: string };
  try {
    assert.is(result.reference, result.image);
    assert.match(result.image, new RegExp(`^${registry}/cli-hello:[0-9a-f]{64}$`));
    assert.equal([result.pushed, result.cached], [false, false]);
    assert.ok(await hasLocalImage(result.image), 'the image is in the local daemon');
    assert.is((await docker(['image', 'inspect', '--format', '{{.Id}}', result.image])).trim(), result.digest);
    const tags = await fetch(`${rig.targets.anonymous!.url}/v2/cli-local/cli-hello/tags/list`);
    assert.is(tags.status, 404, 'nothing reached the registry');
  } finally {
    await docker(['rmi', result.image]).catch(() => undefined);
  }
});

test('--ca and --tls-no-verify reach a loopback TLS registry (taken for plain HTTP without them: E_REGISTRY_TLS, exit 2); --insecure-registry forces plain HTTP', async () => {
  const tls = rig.targets.tls!;
  const registry = `${tls.host}/cli`;
  const base = ['build', files.fn, '--registry', registry, '--runtimes', files.runtimes, '--docker-config', files.dockerConfig];
  const untold = await cli(base);
  assert.is(untold.code, 2, untold.stderr);
  assert.match(untold.stderr, 'E_REGISTRY_TLS');
  assert.match(untold.stderr, 'called over plain HTTP');

  const withCa = await cli([...base, '--ca', `${tls.host}=${tls.caPath}`, '--json']);
  assert.is(withCa.code, 0, withCa.stderr);
  const built = JSON.parse(withCa.stdout) as { reference: string; pushed: boolean };
  assert.is(built.pushed, true);
  assert.match(built.reference, new RegExp(`^${registry}/cli-hello@sha256:`));

  // The existence check now finds the image: answered over TLS without verifying the certificate.
  const noVerify = await cli([...base, '--tls-no-verify', tls.host, '--json']);
  assert.is(noVerify.code, 0, noVerify.stderr);
  assert.equal(JSON.parse(noVerify.stdout), { ...JSON.parse(noVerify.stdout), reference: built.reference, cached: true });

  // The same --ca that works above, with --insecure-registry: plain HTTP wins and fails.
  const plain = await cli([...base, '--ca', `${tls.host}=${tls.caPath}`, '--insecure-registry', tls.host]);
  assert.is(plain.code, 2, plain.stderr);
  assert.match(plain.stderr, 'called over plain HTTP');
});

test('--timeout: a build that outlasts it exits 3 with E_BUILD_TIMEOUT', async () => {
  const slow = structuredClone(rig.catalog);
  slow.find((r) => r.ID === 'nodejs')!.versions[0]!.images.find((i) => i.phase === 'installation')!.command = 'sleep 120';
  const runtimes = join(dir, 'slow-runtimes.json');
  writeFileSync(runtimes, JSON.stringify(slow));
  const started = Date.now();
  const run = await cli(['build', files.fn, '--registry', `${rig.targets.anonymous!.host}/cli-slow`, '--runtimes', runtimes, '--docker-config', files.dockerConfig, '--timeout', '3']);
  assert.is(run.code, 3, run.stderr);
  assert.match(run.stderr, 'E_BUILD_TIMEOUT');
  assert.ok(Date.now() - started < 60_000, 'stopped at the limit, not at the end of the install');
  assert.is(run.stdout, '');
});

test('several Functions in one file: build --json prints an array, tag prints one line each and tag --json an array', async () => {
  const registry = `${rig.targets.anonymous!.host}/cli`;
  const two = join(dir, 'two.yaml');
  const second = readFileSync(files.fn, 'utf8').replace('name: cli-hello', 'name: cli-hello-two');
  writeFileSync(two, `${readFileSync(files.fn, 'utf8')}---\n${second}`);
  const common = ['--registry', registry, '--runtimes', files.runtimes, '--docker-config', files.dockerConfig];
  const run = await cli(['build', two, ...common, '--json']);
  assert.is(run.code, 0, run.stderr);
  const results = JSON.parse(run.stdout) as { function: string; image: string; tag: string; reference: string }[];
  assert.equal(results.map((r) => r.function), ['default/cli-hello', 'default/cli-hello-two']);
  assert.is(results[0]!.tag, results[1]!.tag, 'the name is not part of the tag');
  assert.match(results[1]!.reference, `${registry}/cli-hello-two@sha256:`);

  const tags = await cli(['tag', two, ...common]);
  assert.is(tags.code, 0, tags.stderr);
  assert.equal(tags.stdout.trim().split('\n'), results.map((r) => r.image));
  const json = await cli(['tag', two, ...common, '--json']);
  assert.is(json.code, 0, json.stderr);
  assert.equal(JSON.parse(json.stdout), results.map((r) => ({ function: r.function, tag: r.tag, image: r.image })));
  const one = await cli(['tag', files.fn, '--runtimes', files.runtimes, '--docker-config', files.dockerConfig, '--json']);
  assert.is(one.code, 0, one.stderr);
  assert.equal(JSON.parse(one.stdout), { function: 'default/cli-hello', tag: results[0]!.tag });
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
