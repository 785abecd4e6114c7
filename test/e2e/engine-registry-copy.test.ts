// How the registry engine moves bytes, asserted from its byte counts and from the requests the
// registries received (a fault proxy in front of the base registry records them): a base in another
// credentialed registry crosses once and is mounted ever after; a base in the target registry is only
// mounted; installed deps are found again by content, so a code-only change runs no container (there
// is no Docker Engine at all for it); and faults — a 500 on a blob, a dropped connection mid-upload,
// a denied mount, the target registry restarted mid-upload — end in a retry or a typed error, never in
// a manifest that names a missing blob.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildFunctionImage, type BuildFunctionOptions, type BuildLogEvent } from '../../lib/build.ts';
import { BuilderError } from '../../lib/errors.ts';
import { RegistryClient } from '../../lib/registry/client.ts';
import { parseReference } from '../../lib/image/reference.ts';
import { rejectsWith } from '../support/errors.ts';
import { startFaultProxy, type FaultAnswer, type FaultProxy } from '../support/fault-proxy.ts';
import { callBuiltFunction, functionObject, registryTags, scopeContainers, startPipelineRig, type PipelineRig } from '../support/pipeline.ts';
import { startRegistry, type RegistryHandle } from '../support/registry.ts';
import type { IncomingMessage } from 'node:http';
import { parseFunction } from '../../lib/function/parse.ts';

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'functions', 'runtimes');
const fixture = (path: string) => readFileSync(join(FIXTURES, path), 'utf8');
const NO_DAEMON = { DOCKER_HOST: 'unix:///nonexistent/docker.sock' };

let rig: PipelineRig;
let target: RegistryHandle;
/** In front of the base registry: every request the builds make for base images. */
let sourceProxy: FaultProxy;
let catalog: unknown;
let dockerConfig: string;
/** The nodejs runtime image's layers (digest → size), read from the source registry. */
let baseLayers: Map<string, number>;

test.before(async () => {
  rig = await startPipelineRig('engine-registry-copy', ['anonymous']);
  target = rig.targets.anonymous!;
  sourceProxy = await startFaultProxy(rig.source.url);
  catalog = JSON.parse(JSON.stringify(rig.catalog).replaceAll(rig.source.host, sourceProxy.host));
  const auths = JSON.parse(rig.dockerConfigJson).auths as Record<string, unknown>;
  auths[sourceProxy.host] = auths[rig.source.host];
  dockerConfig = JSON.stringify({ auths });
  const runtimeImage = JSON.stringify(rig.catalog).match(/"image":"([^"]*nodejs:[^"]*)"/)?.[1] as string;
  const ref = parseReference(runtimeImage);
  const client = new RegistryClient({ registry: ref.registry, credentials: (await import('../../lib/registry/credentials.ts')).parseDockerConfig(rig.dockerConfigJson) });
  const manifest = await client.getManifest(ref.repository, ref.tag ?? 'latest');
  baseLayers = new Map((manifest.json.layers as { digest: string; size: number }[]).map((l) => [l.digest, l.size]));
});

test.after(async () => {
  await sourceProxy?.stop();
  await rig?.stop();
});

function options(registry: string, extra: BuildFunctionOptions = {}): BuildFunctionOptions {
  return { registry, catalog: catalog as object, dockerConfig, registries: rig.registries, engine: 'registry', networkMode: 'host', ...extra };
}

const baseBytes = () => [...baseLayers.values()].reduce((a, b) => a + b, 0);
/** GETs of base layer blobs the base registry answered. */
const baseLayerReads = () => sourceProxy.requests.filter((r) => r.method === 'GET' && r.status === 200 && [...baseLayers.keys()].some((d) => r.path.endsWith(`/blobs/${d}`)));
const nodeFn = (name: string, text = 'text') => functionObject(name, { runtime: 'nodejs24', handler: `handler.${text}`, function: fixture('nodejs/handler.js') });

test('a base in another credentialed registry crosses once; a second function on it moves no base bytes', async () => {
  const readsBefore = baseLayerReads().length;
  const first = await buildFunctionImage(parseFunction(nodeFn('copy-one')), options(`${target.host}/copy`));
  assert.ok(first.bytes!.uploaded >= baseBytes(), `uploaded ${first.bytes!.uploaded} holds the base's ${baseBytes()} bytes`);
  assert.is(baseLayerReads().length - readsBefore, baseLayers.size, 'each base layer was read from the base registry once');

  const second = await buildFunctionImage(parseFunction(nodeFn('copy-two')), options(`${target.host}/copy`));
  assert.is(baseLayerReads().length - readsBefore, baseLayers.size, 'no base layer was read again');
  assert.ok(second.bytes!.uploaded < 64 * 1024, `the second function sent only its code and config (${second.bytes!.uploaded} bytes)`);
  assert.ok(second.bytes!.mounted >= baseBytes(), 'its base layers were mounted in the target registry');
  const answer = await callBuiltFunction(second.reference, target, 'two');
  assert.is(answer.text, 'got 3 characters: two');

  const again = await buildFunctionImage(parseFunction(nodeFn('copy-two')), options(`${target.host}/copy`));
  assert.is(again.cached, true);
  assert.equal(again.bytes, { uploaded: 0, mounted: 0, skipped: 0 });
});

test('a base in the target registry itself is mounted: no base byte moves', async () => {
  const source = rig.source;
  const fn = functionObject('mount-one', { runtime: 'nodejs24', handler: 'handler.text', function: fixture('nodejs/handler.js') });
  const result = await buildFunctionImage(parseFunction(fn), { ...options(`${source.host}/mounted`), catalog: rig.catalog, dockerConfig: rig.dockerConfigJson });
  assert.ok(result.bytes!.mounted >= baseBytes());
  assert.ok(result.bytes!.uploaded < 64 * 1024, `only code and config were sent (${result.bytes!.uploaded} bytes)`);
  const answer = await callBuiltFunction(result.reference, source, 'mnt');
  assert.is(answer.text, 'got 3 characters: mnt');
});

test('installed deps are reused by content: a code-only change needs no Docker Engine and runs nothing', async () => {
  const deps = fixture('nodejs-deps/package.json');
  const code = fixture('nodejs-deps/handler.js');
  const fn = (source: string) => functionObject('deps-reuse', { runtime: 'nodejs24', handler: 'handler.hello', function: source, deps });
  const log: BuildLogEvent[] = [];
  const first = await buildFunctionImage(parseFunction(fn(code)), options(`${target.host}/deps`, { log: (e) => log.push(e) }));
  assert.ok(log.some((e) => e.event === 'install-step'), 'the first build installs');
  assert.ok((await registryTags(target, 'deps/deps-reuse')).some((t) => t.startsWith('deps-')), 'the deps layer is recorded in the target repository');

  log.length = 0;
  const changed = `${code}\n// a code-only change\n`;
  const second = await buildFunctionImage(parseFunction(fn(changed)), options(`${target.host}/deps`, { docker: NO_DAEMON, runInstall: false, log: (e) => log.push(e) }));
  assert.is.not(second.digest, first.digest);
  assert.not.ok(log.some((e) => e.event === 'install-step'));
  assert.ok(log.some((e) => e.event === 'deps-reused'));
  assert.ok(second.bytes!.uploaded < 64 * 1024, `only the code layer and config were sent (${second.bytes!.uploaded} bytes)`);
  const answer = await callBuiltFunction(second.reference, target, 'again');
  assert.is(answer.text, 'hello again, from fib-greeting 1.0.0');
});

test('deps that were never installed: E_INSTALL_REQUIRED with runInstall false (both engines), E_INSTALL_NO_DOCKER without a daemon; nothing pushed', async () => {
  const fn = functionObject('deps-new', { runtime: 'nodejs24', handler: 'handler.hello', function: fixture('nodejs-deps/handler.js'), deps: fixture('nodejs-deps/package.json') });
  const required = await rejectsWith(buildFunctionImage(parseFunction(fn), options(`${target.host}/fresh`, { runInstall: false })), 'E_INSTALL_REQUIRED');
  assert.match(required.message, 'package.json');
  const noDocker = await rejectsWith(buildFunctionImage(parseFunction(fn), options(`${target.host}/fresh`, { docker: NO_DAEMON })), 'E_INSTALL_NO_DOCKER');
  assert.match(noDocker.message, '--engine docker');
  assert.match(noDocker.message, 'Job');
  // The docker engine runs the step in every build: refused before its daemon is asked.
  const onDocker = await rejectsWith(buildFunctionImage(parseFunction(fn), options(`${target.host}/fresh`, { engine: 'docker', runInstall: false, docker: NO_DAEMON })), 'E_INSTALL_REQUIRED');
  assert.match(onDocker.message, 'docker engine');
  assert.equal(await registryTags(target, 'fresh/deps-new'), []);
});

test('a failing install command: E_BUILD_FAILED naming the step with its output, no container left, nothing pushed', async () => {
  const deps = JSON.stringify({ name: 'broken', version: '1.0.0', private: true, dependencies: { 'fib-missing': 'file:/offline-packages/fib-missing-9.9.9.tgz' } });
  const fn = functionObject('deps-broken', { runtime: 'nodejs24', handler: 'handler.hello', function: fixture('nodejs-deps/handler.js'), deps });
  const error = await rejectsWith(buildFunctionImage(parseFunction(fn), options(`${target.host}/broken`)), 'E_BUILD_FAILED');
  assert.is(error.kind, 'user');
  assert.match(error.message, 'install step');
  assert.match(error.message, 'fib-missing');
  assert.equal(await scopeContainers(rig.scope), []);
  assert.equal(await registryTags(target, 'broken/deps-broken'), []);
});

/** A proxy in front of the target whose `fault` answers some requests. */
async function faultyTarget(fault: (req: IncomingMessage) => FaultAnswer | undefined): Promise<FaultProxy> {
  return startFaultProxy(target.url, { intercept: (req) => fault(req) });
}

const isUpload = (req: IncomingMessage) => (req.method === 'PATCH' || req.method === 'PUT') && (req.url ?? '').includes('/blobs/uploads/');

test('faults: a 500 on a blob upload and a connection dropped mid-upload are retried; the image is whole', async () => {
  let faults = 0;
  const proxy = await faultyTarget((req) => {
    if (!isUpload(req) || faults >= 2) return undefined;
    faults++;
    return faults === 1 ? { status: 500, body: '{"errors":[{"code":"UNKNOWN","message":"injected"}]}' } : { status: 0, reset: true };
  });
  try {
    const log: BuildLogEvent[] = [];
    const result = await buildFunctionImage(parseFunction(nodeFn('fault-retry')), options(`${proxy.host}/faults`, { log: (e) => log.push(e) }));
    assert.is(faults, 2);
    assert.ok(log.filter((e) => e.event === 'blob-retry').length >= 1, 'a retry was logged');
    const answer = await callBuiltFunction(result.reference.replace(proxy.host, target.host), target, 'whole');
    assert.is(answer.text, 'got 5 characters: whole');
  } finally {
    await proxy.stop();
  }
});

test('faults: the target registry restarted mid-upload: the copy starts again and the image is whole', async () => {
  const registry = await startRegistry('anonymous');
  let restarting: Promise<void> | undefined;
  // The first chunk of a streamed layer kills the registry and starts it again on the same port and
  // storage, as a restart of its pod would; the request in flight gets no answer.
  const proxy = await startFaultProxy(registry.url, {
    intercept: (req) => {
      if (restarting || req.method !== 'PATCH') return undefined;
      restarting = registry.restart();
      return { status: 0, reset: true };
    },
  });
  try {
    const log: BuildLogEvent[] = [];
    const result = await buildFunctionImage(parseFunction(nodeFn('restart')), options(`${proxy.host}/restart`, { log: (e) => log.push(e) }));
    assert.ok(restarting, 'the registry was restarted during an upload');
    assert.ok(log.some((e) => e.event === 'blob-retry'), 'the interrupted blob was sent again');
    const answer = await callBuiltFunction(result.reference.replace(proxy.host, registry.host), registry, 'restart');
    assert.is(answer.text, 'got 7 characters: restart');
  } finally {
    await proxy.stop();
    await restarting?.catch(() => undefined);
    await registry.stop();
  }
});

test('faults: uploads that keep failing end in a typed error with no tag pushed; a rerun succeeds', async () => {
  const proxy = await faultyTarget((req) => (isUpload(req) ? { status: 500, body: '{"errors":[{"code":"UNKNOWN","message":"injected"}]}' } : undefined));
  try {
    const error = (await buildFunctionImage(parseFunction(nodeFn('fault-fail')), options(`${proxy.host}/faults`)).then(() => undefined, (e: unknown) => e)) as BuilderError;
    assert.instance(error, BuilderError);
    assert.is(error.kind, 'infrastructure');
    assert.match(error.code, /^E_REGISTRY_/);
    assert.not.ok(proxy.requests.some((r) => r.method === 'PUT' && r.path.includes('/manifests/') && r.status < 300), 'no manifest was pushed');
  } finally {
    await proxy.stop();
  }
  assert.equal(await registryTags(target, 'faults/fault-fail'), []);
  const rerun = await buildFunctionImage(parseFunction(nodeFn('fault-fail')), options(`${target.host}/faults`));
  assert.is(rerun.pushed, true);
  assert.is((await callBuiltFunction(rerun.reference, target, 'rerun')).text, 'got 5 characters: rerun');
});

test('faults: a denied mount falls back to streaming the blob', async () => {
  const proxy = await faultyTarget((req) => ((req.url ?? '').includes('mount=') ? { status: 403, body: '{"errors":[{"code":"DENIED","message":"mount denied (injected)"}]}' } : undefined));
  try {
    const log: BuildLogEvent[] = [];
    const result = await buildFunctionImage(parseFunction(nodeFn('fault-mount')), options(`${proxy.host}/denied`, { log: (e) => log.push(e) }));
    assert.ok(log.some((e) => e.event === 'mount-refused'));
    assert.is(result.bytes!.mounted, 0);
    const answer = await callBuiltFunction(result.reference.replace(proxy.host, target.host), target, 'denied');
    assert.is(answer.text, 'got 6 characters: denied');
  } finally {
    await proxy.stop();
  }
});

test.run();
