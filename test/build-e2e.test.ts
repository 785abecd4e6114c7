// End to end: Kubeless Functions of the nodejs and python fixture runtimes, every content type,
// with and without deps, built by buildFunctionImage() through the real Docker Engine, pushed to
// registries of every kind (base images always come from a private Basic-auth registry), gone from
// the daemon afterwards, pulled back, run, and called over HTTP. Plus the minikube-style TLS Docker
// endpoint, the local-only (push: false) workflow and prebuilt Functions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildFunctionImage, type BuildFunctionOptions, type BuildResult } from '../lib/build.ts';
import { parseDockerConfig } from '../lib/registry/credentials.ts';
import { gzip, makeTar, makeZip, xz } from './support/archives.ts';
import { dockerTlsEndpoint } from './support/docker-tls.ts';
import { freePort } from './support/net.ts';
import { callBuiltFunction, functionObject, hasLocalImage, startPipelineRig, type PipelineRig } from './support/pipeline.ts';
import type { RegistryHandle } from './support/registry.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'functions', 'runtimes');
const fixture = (path: string) => readFileSync(join(FIXTURES, path), 'utf8');
const sha256 = (data: string | Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

let rig: PipelineRig;

test.before(async () => {
  try {
    rig = await startPipelineRig('build-e2e', ['anonymous', 'basic', 'tls']);
  } catch (error) {
    // uvu does not print what a hook threw.
    console.error('pipeline rig failed to start:', error);
    throw error;
  }
});

test.after(async () => {
  await rig?.stop();
});

function options(target: RegistryHandle, extra: BuildFunctionOptions = {}): BuildFunctionOptions {
  return { registry: `${target.host}/functions`, catalog: rig.catalog, dockerConfig: rig.dockerConfigJson, registries: rig.registries, ...extra };
}

/** Builds, checks the result and the daemon, then pulls the image back and calls the function. */
async function buildAndCall(name: string, fn: Record<string, unknown>, target: RegistryHandle, body: string, expected: string, extra: BuildFunctionOptions = {}): Promise<BuildResult> {
  const result = await buildFunctionImage(fn, options(target, extra));
  assert.is(result.cached, false);
  assert.is(result.pushed, true);
  assert.match(result.tag, /^[0-9a-f]{64}$/);
  assert.is(result.image, `${target.host}/functions/${name}:${result.tag}`);
  assert.is(result.reference, `${target.host}/functions/${name}@${result.digest}`);
  assert.not.ok(await hasLocalImage(result.image), 'the local tag is removed after the push');
  const answer = await callBuiltFunction(result.reference, target, body);
  assert.is(answer.status, 200, answer.text);
  assert.is(answer.text, expected);
  return result;
}

const GREETING = (who: string) => `hello ${who}, from fib-greeting 1.0.0`;

test('nodejs, text, no deps → anonymous registry', async () => {
  const fn = functionObject('node-text', { handler: 'handler.text', runtime: 'nodejs24', function: fixture('nodejs/handler.js') });
  await buildAndCall('node-text', fn, rig.targets.anonymous!, 'abc', 'got 3 characters: abc');
});

test('nodejs, base64 with spec.deps → TLS registry (CA given)', async () => {
  const fn = functionObject('node-base64-deps', {
    handler: 'handler.hello',
    runtime: 'nodejs24',
    'function-content-type': 'base64',
    function: Buffer.from(fixture('nodejs-deps/handler.js')).toString('base64'),
    deps: fixture('nodejs-deps/package.json'),
  });
  await buildAndCall('node-base64-deps', fn, rig.targets.tls!, 'tls', GREETING('tls'));
});

test('nodejs, url+zip+deps with checksum → Basic registry (same credentials as the base images)', async () => {
  const zip = makeZip([
    { name: 'handler.js', content: fixture('nodejs-deps/handler.js') },
    { name: 'package.json', content: fixture('nodejs-deps/package.json') },
  ]);
  const url = rig.files.put('node-fn.zip', zip);
  const fn = functionObject('node-url-zip-deps', { handler: 'handler.hello', runtime: 'nodejs24', 'function-content-type': 'url+zip+deps', function: url, checksum: sha256(zip) });
  await buildAndCall('node-url-zip-deps', fn, rig.targets.basic!, 'zip', GREETING('zip'));
});

test('nodejs, base64+compressedtar+deps (tar.gz) → anonymous registry', async () => {
  const tgz = gzip(await makeTar([
    { name: 'lib/', type: 'directory' },
    { name: 'lib/handler.js', content: fixture('nodejs-deps/handler.js') },
    { name: 'package.json', content: fixture('nodejs-deps/package.json') },
  ]));
  const fn = functionObject('node-tgz-deps', { handler: 'lib/handler.hello', runtime: 'nodejs24', 'function-content-type': 'base64+compressedtar+deps', function: tgz.toString('base64') });
  // A module path with a directory is not a Kubeless handler: the parser must say so, nothing is built.
  await buildFunctionImage(fn, options(rig.targets.anonymous!)).then(
    () => assert.unreachable('a handler with a path was accepted'),
    (error: { code?: string }) => assert.is(error.code, 'E_FUNCTION_INVALID'),
  );
  const flat = gzip(await makeTar([
    { name: 'handler.js', content: fixture('nodejs-deps/handler.js') },
    { name: 'package.json', content: fixture('nodejs-deps/package.json') },
  ]));
  const ok = functionObject('node-tgz-deps', { handler: 'handler.hello', runtime: 'nodejs24', 'function-content-type': 'base64+compressedtar+deps', function: flat.toString('base64') });
  await buildAndCall('node-tgz-deps', ok, rig.targets.anonymous!, 'tar', GREETING('tar'));
});

test('python, text with spec.deps → Basic registry', async () => {
  const fn = functionObject('py-text-deps', { handler: 'handler.hello', runtime: 'python3.11', function: fixture('python-deps/handler.py'), deps: fixture('python-deps/requirements.txt') });
  await buildAndCall('py-text-deps', fn, rig.targets.basic!, 'py', GREETING('py'));
});

test('python, url (single file, checksum) → anonymous registry', async () => {
  const source = fixture('python/handler.py');
  const url = rig.files.put('handler.py', source);
  const fn = functionObject('py-url', { handler: 'handler.text', runtime: 'python3.11', 'function-content-type': 'url', function: url, checksum: sha256(source) });
  await buildAndCall('py-url', fn, rig.targets.anonymous!, 'hello', 'got 5 characters: hello');
});

test('python, base64+zip, no deps → TLS registry without certificate verification (function-registry-tls-verify: "false")', async () => {
  const zip = makeZip([{ name: 'handler.py', content: fixture('python/handler.py') }]);
  const fn = functionObject('py-b64-zip', { handler: 'handler.text', runtime: 'python3.11', 'function-content-type': 'base64+zip', function: zip.toString('base64') });
  const tls = rig.targets.tls!;
  await buildAndCall('py-b64-zip', fn, tls, 'zip!', 'got 4 characters: zip!', { registries: { [tls.host]: { tlsVerify: false } } });
});

test('python, url+compressedtar+deps (tar.xz) → TLS registry', async () => {
  const txz = xz(await makeTar([
    { name: 'handler.py', content: fixture('python-deps/handler.py') },
    { name: 'requirements.txt', content: fixture('python-deps/requirements.txt') },
  ]));
  const url = rig.files.put('py-fn.tar.xz', txz);
  const fn = functionObject('py-url-txz-deps', { handler: 'handler.hello', runtime: 'python3.11', 'function-content-type': 'url+compressedtar+deps', function: url, checksum: sha256(txz) });
  await buildAndCall('py-url-txz-deps', fn, rig.targets.tls!, 'xz', GREETING('xz'));
});

test('the same build through the minikube-style TLS Docker endpoint (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH)', async () => {
  const endpoint = await dockerTlsEndpoint();
  try {
    const fn = functionObject('node-via-tls-engine', { handler: 'handler.hello', runtime: 'nodejs24', function: fixture('nodejs-deps/handler.js'), deps: fixture('nodejs-deps/package.json') });
    await buildAndCall('node-via-tls-engine', fn, rig.targets.anonymous!, 'minikube', GREETING('minikube'), { docker: endpoint.env });
    assert.ok(endpoint.accepted() > 0, 'the build went through the TLS endpoint');
  } finally {
    await endpoint.stop();
  }
});

test('push: false builds into the local daemon only (minikube workflow) and finds it there next time', async () => {
  const fn = functionObject('node-local', { handler: 'handler.text', runtime: 'nodejs24', function: fixture('nodejs/handler.js').replace('characters', 'chars') });
  // Two entries: the config does not say which registry is meant, so the image gets a local-only name.
  const twoEntries = JSON.parse(rig.dockerConfigJson) as { auths: Record<string, unknown> };
  twoEntries.auths['registry.example.com'] = { username: 'someone', password: 'x' };
  const local = await buildFunctionImage(fn, { catalog: rig.catalog, dockerConfig: twoEntries, registries: rig.registries, push: false });
  assert.is(local.pushed, false);
  assert.is(local.cached, false);
  assert.is(local.image, `kubeless.local/node-local:${local.tag}`);
  assert.is(local.reference, local.image);
  assert.match(local.digest, /^sha256:/);
  assert.ok(await hasLocalImage(local.image));
  const again = await buildFunctionImage(fn, { catalog: rig.catalog, dockerConfig: twoEntries, registries: rig.registries, push: false });
  assert.is(again.cached, true);
  assert.is(again.digest, local.digest);
  // With a registry named, the local name is the one a Deployment would use.
  const named = await buildFunctionImage(fn, { ...options(rig.targets.anonymous!), push: false });
  assert.is(named.image, `${rig.targets.anonymous!.host}/functions/node-local:${local.tag}`);
  assert.is(named.digest, local.digest, 'same content, same image');
});

test('a prebuilt Function (containers[0].image) is returned as is: no registry, no daemon', async () => {
  const closed = await freePort();
  const fn = functionObject('prebuilt', { handler: 'handler.text', runtime: 'nodejs24', function: 'x' });
  (fn.spec as Record<string, unknown>).deployment = { spec: { template: { spec: { containers: [{ image: 'example.com/team/prebuilt@sha256:' + 'a'.repeat(64) }] } } } };
  const result = await buildFunctionImage(fn, { registry: `127.0.0.1:${closed}/nowhere`, catalog: rig.catalog, docker: { DOCKER_HOST: `tcp://127.0.0.1:${closed}` } });
  assert.is(result.prebuilt, true);
  assert.is(result.reference, 'example.com/team/prebuilt@sha256:' + 'a'.repeat(64));
  assert.is(result.digest, 'sha256:' + 'a'.repeat(64));
});

test('the Kubeless default target: no registry given, the docker config\'s only entry names host and namespace', async () => {
  const source = rig.source;
  const config = parseDockerConfig(rig.dockerConfigJson);
  assert.is(config.entries.length, 1);
  const fn = functionObject('node-default-target', { handler: 'handler.text', runtime: 'nodejs24', function: fixture('nodejs/handler.js').replace('got', 'received') });
  const result = await buildFunctionImage(fn, { catalog: rig.catalog, dockerConfig: config });
  assert.is(result.image, `${source.host}/${source.username}/node-default-target:${result.tag}`);
  const answer = await callBuiltFunction(result.reference, source, 'abc');
  assert.is(answer.text, 'received 3 characters: abc');
});

test.run();
