// Failures: each is its typed error, nothing is pushed, no container is left and no temp file is
// written. The target is checked with the registry's tags list; containers by the label every
// image of this file inherits; temp files with a TMPDIR of our own during the call.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFunctionImage, type BuildFunctionOptions } from '../../lib/build.ts';
import { BuilderError } from '../../lib/errors.ts';
import { RegistryClient } from '../../lib/registry/client.ts';
import { parseDockerConfig } from '../../lib/registry/credentials.ts';
import { makeZip } from '../support/archives.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import { freePort } from '../support/net.ts';
import { functionObject, LOOPBACK_SOURCES, registryTags, scopeContainers, startPipelineRig, type PipelineRig } from '../support/pipeline.ts';
import { dockerConfigJsonFor, startRegistry, type RegistryHandle } from '../support/registry.ts';
import { parseFunction } from '../../lib/function/parse.ts';

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'functions', 'runtimes');
const fixture = (path: string) => readFileSync(join(FIXTURES, path), 'utf8');
const sha256 = (data: string | Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

let rig: PipelineRig;
let token: RegistryHandle;

test.before(async () => {
  try {
    rig = await startPipelineRig('build-failures', ['anonymous']);
    token = await startRegistry('token');
  } catch (error) {
    console.error('pipeline rig failed to start:', error);
    throw error;
  }
});

test.after(async () => {
  await token?.stop();
  await rig?.stop();
});

/**
 * Runs a build that must fail with `code`; checks that the target repository has no tag, that no
 * container of this file's images exists and that nothing was written to the temp directory.
 */
async function expectFailure(name: string, fn: Record<string, unknown>, code: string, extra: BuildFunctionOptions = {}, tagsOf?: () => Promise<string[]>): Promise<BuilderError> {
  const target = rig.targets.anonymous!;
  const temp = mkdtempSync(join(tmpdir(), 'fib-failure-tmp-'));
  const savedTmp = process.env.TMPDIR;
  process.env.TMPDIR = temp;
  let caught: unknown;
  try {
    await buildFunctionImage(parseFunction(fn), { registry: `${target.host}/failures`, catalog: rig.catalog, dockerConfig: rig.dockerConfigJson, ...extra });
  } catch (error) {
    caught = error;
  } finally {
    if (savedTmp === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = savedTmp;
  }
  try {
    assert.ok(caught, `${name}: the build must fail`);
    assert.instance(caught, BuilderError, String(caught));
    const error = caught as BuilderError;
    assert.is(error.code, code, error.message);
    assert.equal(readdirSync(temp), [], 'no temp file');
    assert.equal(await (tagsOf ?? (() => registryTags(target, `failures/${name}`)))(), [], 'no tag pushed');
    assert.equal(await scopeContainers(rig.scope), [], 'no container left');
    return error;
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

test('a failing install command: E_BUILD_FAILED (user) with the step and the tail of its output', async () => {
  const deps = JSON.stringify({ name: 'broken', version: '1.0.0', dependencies: { 'fib-not-available-offline': '9.9.9' } });
  const fn = functionObject('broken-deps', { handler: 'handler.hello', runtime: 'nodejs24', function: fixture('nodejs-deps/handler.js'), deps });
  const error = await expectFailure('broken-deps', fn, 'E_BUILD_FAILED');
  assert.is(error.kind, 'user');
  assert.match(String(error.details.step), 'kubeless-npm-install.sh');
  assert.match(error.message, 'kubeless-npm-install.sh');
  assert.match(error.message, /fib-not-available-offline|ENOTCACHED|npm error/);
  assert.ok((error.details.outputTail as string[]).some((line) => line.includes('npm')), 'the tail holds npm output');
});

test('an install step killed by a signal (exit code 137, as under a daemon restart or the OOM killer) is an infrastructure error on both engines; exit 1 stays a user error', async () => {
  const catalog = structuredClone(rig.catalog);
  const install = catalog.find((r) => r.ID === 'nodejs')!.versions[0]!.images.find((i) => i.phase === 'installation')!;
  // A child shell, waited for (not exec'd into): the step's own shell is PID 1 of its container, which
  // a SIGKILL from inside the container cannot stop.
  install.command = "echo about to be killed; sh -c 'kill -9 $$'; exit $?";
  const fn = functionObject('killed-step', { handler: 'handler.hello', runtime: 'nodejs24', function: fixture('nodejs-deps/handler.js'), deps: fixture('nodejs-deps/package.json') });
  for (const engine of ['docker', 'registry'] as const) {
    const killed = await expectFailure('killed-step', fn, 'E_BUILD_FAILED', { catalog, engine });
    assert.is(killed.kind, 'infrastructure', `${engine}: ${killed.message}`);
    assert.is(killed.details.exitCode, 137);
  }
  install.command = 'echo failing on purpose; exit 1';
  const failed = await expectFailure('killed-step', fn, 'E_BUILD_FAILED', { catalog });
  assert.is(failed.kind, 'user');
});

test('a function env value (a password) is in no progress line, log event or error, even when the install step prints it', async () => {
  const secret = `fib-password-${Math.random().toString(36).slice(2)}`;
  const catalog = structuredClone(rig.catalog);
  const install = catalog.find((r) => r.ID === 'nodejs')!.versions[0]!.images.find((i) => i.phase === 'installation')!;
  install.command = 'echo "logging in with $NPM_PASSWORD"; echo "bad password $NPM_PASSWORD" >&2; exit 3';
  const fn = functionObject('env-leak', { handler: 'handler.hello', runtime: 'nodejs24', function: fixture('nodejs-deps/handler.js'), deps: fixture('nodejs-deps/package.json') }, { NPM_PASSWORD: secret });
  const seen: unknown[] = [];
  const error = await expectFailure('env-leak', fn, 'E_BUILD_FAILED', { catalog, onProgress: (event) => seen.push(event), log: (event) => seen.push(event) });
  assert.is(error.kind, 'user', 'the install command failed on its own');
  const shown = JSON.stringify({ seen, message: error.message, details: error.details });
  assert.not.match(shown, secret);
  assert.match(shown, 'logging in with ***', 'the line is shown, its value hidden');
  assert.match(error.message, 'bad password ***');
});

test('a missing base image: by digest E_BASE_IMAGE_NOT_FOUND naming it, by tag the registry\'s E_REGISTRY_NOT_FOUND naming it', async () => {
  const missingByDigest = `${rig.source.host}/fib-${rig.scope.value}/missing@sha256:${'0'.repeat(64)}`;
  const catalog = structuredClone(rig.catalog);
  catalog.find((r) => r.ID === 'nodejs')!.versions[0]!.images.find((i) => i.phase === 'runtime')!.image = missingByDigest;
  const fn = functionObject('missing-base', { handler: 'handler.text', runtime: 'nodejs24', function: fixture('nodejs/handler.js') });
  const byDigest = await expectFailure('missing-base', fn, 'E_BASE_IMAGE_NOT_FOUND', { catalog });
  assert.is(byDigest.kind, 'user');
  assert.is(byDigest.details.image, missingByDigest);
  assert.match(byDigest.message, missingByDigest);

  const missingByTag = `${rig.source.host}/fib-${rig.scope.value}/missing:24`;
  catalog.find((r) => r.ID === 'nodejs')!.versions[0]!.images.find((i) => i.phase === 'runtime')!.image = missingByTag;
  const closed = await freePort();
  const byTag = await expectFailure('missing-base', fn, 'E_REGISTRY_NOT_FOUND', { catalog, docker: { DOCKER_HOST: `tcp://127.0.0.1:${closed}` } });
  assert.match(byTag.message, `fib-${rig.scope.value}/missing:24`);
});

test('a bad checksum: E_CHECKSUM_MISMATCH for a url (found when downloading to build) and for base64', async () => {
  const content = fixture('nodejs/handler.js');
  const url = rig.files.put('checksummed.js', content);
  const wrong = sha256(content + 'tampered');
  const fromUrl = functionObject('bad-checksum', { handler: 'handler.text', runtime: 'nodejs24', 'function-content-type': 'url', function: url, checksum: wrong });
  const error = await expectFailure('bad-checksum', fromUrl, 'E_CHECKSUM_MISMATCH', { download: LOOPBACK_SOURCES });
  assert.is(error.kind, 'user');
  const inline = functionObject('bad-checksum', { handler: 'handler.text', runtime: 'nodejs24', 'function-content-type': 'base64', function: Buffer.from(content).toString('base64'), checksum: wrong });
  await expectFailure('bad-checksum', inline, 'E_CHECKSUM_MISMATCH');
});

test('an unsafe archive: E_ARCHIVE_UNSAFE naming the entry', async () => {
  const zip = makeZip([
    { name: 'handler.js', content: fixture('nodejs/handler.js') },
    { name: '../../etc/cron.d/evil', content: '* * * * * root true\n' },
  ]);
  const fn = functionObject('unsafe-archive', { handler: 'handler.text', runtime: 'nodejs24', 'function-content-type': 'base64+zip', function: zip.toString('base64') });
  const error = await expectFailure('unsafe-archive', fn, 'E_ARCHIVE_UNSAFE');
  assert.is(error.kind, 'user');
  assert.match(error.message, '../../etc/cron.d/evil');
});

test('denied push credentials: E_PUSH_FAILED (user) naming the credential key, never the secret; a wrong password fails before any build', async () => {
  const pullOnly = token.users!.pullOnly;
  const config = JSON.parse(rig.dockerConfigJson) as { auths: Record<string, unknown> };
  Object.assign(config.auths, JSON.parse(dockerConfigJsonFor(token.host, pullOnly)).auths);
  const fullConfig = parseDockerConfig(dockerConfigJsonFor(token.host, token.users!.full));
  const tokenTags = async () => {
    const client = new RegistryClient({ registry: token.host, credentials: fullConfig });
    try {
      return await client.listTags('failures/denied-push');
    } catch (error) {
      if ((error as BuilderError).code === 'E_REGISTRY_NOT_FOUND') return [];
      throw error;
    }
  };
  const fn = functionObject('denied-push', { handler: 'handler.text', runtime: 'nodejs24', function: fixture('nodejs/handler.js') });
  const denied = await expectFailure('denied-push', fn, 'E_PUSH_FAILED', { registry: `${token.host}/failures`, dockerConfig: config }, tokenTags);
  assert.is(denied.kind, 'user');
  assert.match(denied.message, `"${token.host}"`);
  const visible = JSON.stringify({ message: denied.message, details: denied.details, cause: String(denied.cause ?? '') });
  assert.not.match(visible, pullOnly.password);

  // A password the registry rejects outright: the existence check fails, the daemon is never asked.
  const wrong = JSON.parse(rig.dockerConfigJson) as { auths: Record<string, unknown> };
  Object.assign(wrong.auths, JSON.parse(dockerConfigJsonFor(token.host, { username: pullOnly.username, password: 'wrong-' + pullOnly.password })).auths);
  const closed = await freePort();
  const rejected = await expectFailure('denied-push', fn, 'E_REGISTRY_UNAUTHORIZED', { registry: `${token.host}/failures`, dockerConfig: wrong, docker: { DOCKER_HOST: `tcp://127.0.0.1:${closed}` } }, tokenTags);
  assert.is(rejected.kind, 'user');
  assert.not.match(JSON.stringify({ m: rejected.message, d: rejected.details }), pullOnly.password);
});

test('cancelled and timed-out builds: E_BUILD_ABORTED / E_BUILD_TIMEOUT, nothing pushed, no container', async () => {
  const catalog = structuredClone(rig.catalog);
  const install = catalog.find((r) => r.ID === 'nodejs')!.versions[0]!.images.find((i) => i.phase === 'installation')!;
  install.command = 'echo slow-install-started; sleep 120';
  const fn = functionObject('slow-install', { handler: 'handler.hello', runtime: 'nodejs24', function: fixture('nodejs-deps/handler.js'), deps: fixture('nodejs-deps/package.json') });
  const controller = new AbortController();
  await expectFailure('slow-install', fn, 'E_BUILD_ABORTED', {
    catalog,
    signal: controller.signal,
    onProgress: (event) => {
      if (event.kind === 'output' && event.line === 'slow-install-started') controller.abort();
    },
  });
  const timedOut = await expectFailure('slow-install', fn, 'E_BUILD_TIMEOUT', { catalog, timeoutMs: 10_000 });
  assert.is(timedOut.kind, 'infrastructure');
});

test('the registry engine: an install step that outlasts the limit ends the build by the limit (E_BUILD_TIMEOUT), its container removed', async () => {
  const catalog = structuredClone(rig.catalog);
  const install = catalog.find((r) => r.ID === 'nodejs')!.versions[0]!.images.find((i) => i.phase === 'installation')!;
  install.command = 'sleep 120';
  const fn = functionObject('slow-install-registry', { handler: 'handler.hello', runtime: 'nodejs24', function: fixture('nodejs-deps/handler.js'), deps: fixture('nodejs-deps/package.json') });
  const started = Date.now();
  const error = await expectFailure('slow-install-registry', fn, 'E_BUILD_TIMEOUT', { catalog, engine: 'registry', timeoutMs: 10_000 });
  const elapsed = Date.now() - started;
  assert.is(error.kind, 'infrastructure');
  // expectFailure's own checks (tags, containers) are in `elapsed` too; the build itself ends by 10 s.
  assert.ok(elapsed < 12_000, `ended after ${elapsed} ms`);
});

test('download and archive limits given to buildFunctionImage hold (E_SOURCE_TOO_LARGE, E_ARCHIVE_UNSAFE) before the daemon is asked', async () => {
  const closed = await freePort();
  const docker = { DOCKER_HOST: `tcp://127.0.0.1:${closed}` };
  const url = rig.files.put('limited.js', fixture('nodejs/handler.js'));
  const fromUrl = functionObject('too-large', { handler: 'handler.text', runtime: 'nodejs24', 'function-content-type': 'url', function: url });
  const download = await expectFailure('too-large', fromUrl, 'E_SOURCE_TOO_LARGE', { download: { ...LOOPBACK_SOURCES, maxBytes: 16 }, docker });
  assert.match(download.message, url);
  const zip = makeZip([{ name: 'handler.js', content: fixture('nodejs/handler.js') }]);
  const fromZip = functionObject('too-large', { handler: 'handler.text', runtime: 'nodejs24', 'function-content-type': 'base64+zip', function: zip.toString('base64') });
  const archive = await expectFailure('too-large', fromZip, 'E_ARCHIVE_UNSAFE', { limits: { maxEntryBytes: 16 }, docker });
  assert.match(archive.message, /"handler.js" is \d+ bytes unpacked, more than the limit of 16 bytes/);
});

/** An http server whose every answer starts (headers and a first chunk) and never ends. */
async function startHangingFileServer(onRequest: () => void) {
  const open = new Set<ServerResponse>();
  const server = createServer((_request, response) => {
    open.add(response);
    response.writeHead(200, { 'content-type': 'application/octet-stream' });
    response.write('module.exports = {');
    onRequest();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/handler.js`,
    stop: () => new Promise<void>((resolve) => {
      for (const response of open) response.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

test('the signal and the time limit cover a url download that hangs: E_BUILD_ABORTED / E_BUILD_TIMEOUT (infrastructure)', async () => {
  const controller = new AbortController();
  const files = await startHangingFileServer(() => setTimeout(() => controller.abort(), 200));
  try {
    const fn = functionObject('hung-download', { handler: 'handler.text', runtime: 'nodejs24', 'function-content-type': 'url', function: files.url });
    const closed = await freePort();
    const docker = { DOCKER_HOST: `tcp://127.0.0.1:${closed}` };
    const cancelled = await expectFailure('hung-download', fn, 'E_BUILD_ABORTED', { signal: controller.signal, docker, download: LOOPBACK_SOURCES });
    assert.is(cancelled.kind, 'infrastructure');
    const started = Date.now();
    const timedOut = await expectFailure('hung-download', fn, 'E_BUILD_TIMEOUT', { timeoutMs: 1_500, docker, download: LOOPBACK_SOURCES });
    assert.ok(Date.now() - started < 10_000, 'the build limit, not the download\'s own 120 s, ended it');
    assert.match(timedOut.message, 'default/hung-download');
  } finally {
    await files.stop();
  }
});

test('the time limit covers a registry that accepts the existence check and never answers: E_BUILD_TIMEOUT, the daemon never asked', async () => {
  const target = rig.targets.anonymous!;
  const proxy = await startFaultProxy(target.url, { intercept: (request) => (request.method === 'HEAD' ? { status: 0, hang: true } : undefined) });
  try {
    const fn = functionObject('hung-check', { handler: 'handler.text', runtime: 'nodejs24', function: fixture('nodejs/handler.js') });
    const closed = await freePort();
    const started = Date.now();
    const error = await expectFailure('hung-check', fn, 'E_BUILD_TIMEOUT', { registry: `${proxy.host}/failures`, timeoutMs: 2_000, docker: { DOCKER_HOST: `tcp://127.0.0.1:${closed}` } });
    assert.ok(Date.now() - started < 15_000, 'the build limit, not the registry client\'s own 30 s, ended it');
    assert.is(error.kind, 'infrastructure');
    assert.ok(proxy.requests.some((r) => r.method === 'HEAD' && r.path.includes('/manifests/') && r.status === 0), 'the existence check was sent and hung');
  } finally {
    await proxy.stop();
  }
});

test('the time limit covers a push that hangs: E_BUILD_TIMEOUT after the push began, nothing pushed, no container', async () => {
  const target = rig.targets.anonymous!;
  // The daemon's blob uploads hang; the existence check and everything else reach the registry.
  const proxy = await startFaultProxy(target.url, { intercept: (request) => (request.method === 'POST' && request.url?.includes('/blobs/uploads/') ? { status: 0, hang: true } : undefined) });
  try {
    const fn = functionObject('hung-push', { handler: 'handler.text', runtime: 'nodejs24', function: fixture('nodejs/handler.js') });
    const phases: string[] = [];
    const error = await expectFailure('hung-push', fn, 'E_BUILD_TIMEOUT', {
      registry: `${proxy.host}/failures`,
      timeoutMs: 25_000,
      onProgress: (event) => {
        if (event.kind === 'phase') phases.push(event.phase);
      },
    });
    assert.is(phases.at(-1), 'push', 'the limit passed during the push');
    assert.is(error.kind, 'infrastructure');
    assert.ok(proxy.requests.some((r) => r.method === 'POST' && r.status === 0), 'the daemon began an upload, which hung');
  } finally {
    await proxy.stop();
  }
});

test.run();
