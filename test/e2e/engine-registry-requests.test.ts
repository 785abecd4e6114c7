// The requests a registry-engine build sends, counted by a fault proxy in front of the real target
// registry: a code-only change asks nothing about blobs it knows are there (the recorded deps layer,
// the base layers it put there before) and opens its two upload sessions ahead; a registry that lost
// such a blob since still gets a whole image; sessions a build does not use are cancelled.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildFunctionImage, type BuildFunctionOptions, type BuildLogEvent, type BuildProgress } from '../../lib/build.ts';
import { startFaultProxy, type FaultProxy, type ProxiedRequest } from '../support/fault-proxy.ts';
import { callBuiltFunction, functionObject, startPipelineRig, type PipelineRig } from '../support/pipeline.ts';
import type { RegistryHandle } from '../support/registry.ts';
import { parseFunction } from '../../lib/function/parse.ts';

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'functions', 'runtimes');
const fixture = (path: string) => readFileSync(join(FIXTURES, path), 'utf8');
const NO_DAEMON = { DOCKER_HOST: 'unix:///nonexistent/docker.sock' };

let rig: PipelineRig;
let target: RegistryHandle;
/** In front of the target registry: every request the builds send it. */
let proxy: FaultProxy;

test.before(async () => {
  rig = await startPipelineRig('engine-registry-requests', ['anonymous']);
  target = rig.targets.anonymous!;
  proxy = await startFaultProxy(target.url);
});

test.after(async () => {
  await proxy?.stop();
  await rig?.stop();
});

function options(namespace: string, extra: BuildFunctionOptions = {}): BuildFunctionOptions {
  return { registry: `${proxy.host}/${namespace}`, catalog: rig.catalog, dockerConfig: rig.dockerConfigJson, engine: 'registry', networkMode: 'host', ...extra };
}

const depsFn = (name: string, code: string) =>
  functionObject(name, { runtime: 'nodejs24', handler: 'handler.hello', function: code, deps: fixture('nodejs-deps/package.json') });

/** The requests one call sends, as "METHOD kind" lines (kind: the path with repository and digests cut off). */
async function requestsOf(work: () => Promise<unknown>): Promise<{ sent: ProxiedRequest[]; kinds: string[] }> {
  const before = proxy.requests.length;
  await work();
  const sent = proxy.requests.slice(before);
  const kinds = sent.map((r) => `${r.method} ${/\/(manifests|blobs\/uploads|blobs)\//.exec(r.path)?.[1] ?? r.path}`);
  return { sent, kinds };
}

const count = (kinds: string[], kind: string) => kinds.filter((k) => k === kind).length;

/** Upload sessions the registry still holds in a repository (distribution's filesystem layout). */
function openUploads(repository: string): string[] {
  const dir = join(target.dir, 'data', 'docker', 'registry', 'v2', 'repositories', repository, '_uploads');
  return existsSync(dir) ? readdirSync(dir) : [];
}

test('a code-only change sends no blob HEAD: the two new blobs (code layer, config) and the manifest, nothing else written', async () => {
  const code = fixture('nodejs-deps/handler.js');
  await buildFunctionImage(parseFunction(depsFn('requests-app', code)), options('requests'));

  const log: BuildLogEvent[] = [];
  let reference = '';
  let pushStarted = 0;
  const onProgress = (event: BuildProgress) => {
    if (event.kind === 'phase' && event.phase === 'push') pushStarted = performance.now();
  };
  const { sent, kinds } = await requestsOf(async () => {
    const changed = await buildFunctionImage(parseFunction(depsFn('requests-app', `${code}\n// changed\n`)), options('requests', { docker: NO_DAEMON, runInstall: false, log: (e) => log.push(e), onProgress }));
    reference = changed.reference.replace(proxy.host, target.host);
  });
  assert.ok(log.some((e) => e.event === 'deps-reused'), 'the recorded deps layer was used');
  assert.is(count(kinds, 'HEAD blobs'), 0, `no blob was asked about: ${kinds.join(', ')}`);
  assert.is(count(kinds, 'POST blobs/uploads'), 2, 'two upload sessions: code layer and config');
  assert.is(count(kinds, 'PUT blobs/uploads'), 2);
  assert.is(count(kinds, 'PUT manifests'), 1);
  // The proxy runs in this process: `at` and the push phase's start are on one clock.
  const arrived = (kind: string) => sent.filter((_, i) => kinds[i] === kind).map((r) => r.at);
  assert.ok(pushStarted > 0 && Math.max(...arrived('POST blobs/uploads')) < pushStarted, 'the upload sessions were opened while the image was assembled, before the push');
  // No second HEAD of the tag: the image is reproducible, so a concurrent build of it pushes the same bytes.
  assert.is(count(kinds, 'HEAD manifests'), 1, `only the cache check asks about the tag: ${kinds.join(', ')}`);
  assert.is(kinds.length, 7, `tag HEAD, deps record GET, 2 POST, 2 PUT, the manifest: ${kinds.join(', ')}`);
  assert.equal(openUploads('requests/requests-app'), [], 'no upload session left open');
  const answer = await callBuiltFunction(reference, target, 'fast');
  assert.is(answer.text, 'hello fast, from fib-greeting 1.0.0');

  const again = await requestsOf(() => buildFunctionImage(parseFunction(depsFn('requests-app', `${code}\n// changed\n`)), options('requests')));
  assert.equal(again.kinds, ['HEAD manifests'], 'an unchanged redeploy is still one request');
});

test('a blob the registry lost since this process saw it: the manifest is refused, every blob is asked about and sent again, and the image is whole', async () => {
  const code = fixture('nodejs-deps/handler.js');
  const first = await buildFunctionImage(parseFunction(depsFn('requests-lost', code)), options('lost'));
  const manifest = JSON.parse(await (await fetch(`${target.url}/v2/lost/requests-lost/manifests/${first.digest}`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' } })).text()) as { layers: { digest: string }[] };
  // A base layer's link in the function repository removed, as garbage collection after a prune does.
  const baseLayer = manifest.layers[0]!.digest;
  assert.is((await fetch(`${target.url}/v2/lost/requests-lost/blobs/${baseLayer}`, { method: 'DELETE' })).status, 202);

  const log: BuildLogEvent[] = [];
  let result: Awaited<ReturnType<typeof buildFunctionImage>> | undefined;
  const { kinds } = await requestsOf(async () => {
    result = await buildFunctionImage(parseFunction(depsFn('requests-lost', `${code}\n// after gc\n`)), options('lost', { docker: NO_DAEMON, runInstall: false, log: (e) => log.push(e) }));
  });
  assert.ok(log.some((e) => e.event === 'blob-missing'), 'the refused manifest was noticed');
  assert.ok(count(kinds, 'HEAD blobs') > 0, 'the blobs were asked about the second time');
  assert.is((await fetch(`${target.url}/v2/lost/requests-lost/blobs/${baseLayer}`, { method: 'HEAD' })).status, 200, 'the lost layer is back');
  const answer = await callBuiltFunction(result!.reference.replace(proxy.host, target.host), target, 'gc');
  assert.is(answer.text, 'hello gc, from fib-greeting 1.0.0');
});

test('freshly installed deps: the tag is asked about again before the manifest, and a build that pushed it meanwhile keeps it', async () => {
  const fn = functionObject('requests-raced', { runtime: 'nodejs24', handler: 'handler.hello', function: fixture('nodejs-deps/handler.js'), deps: fixture('nodejs-deps/package.json') });
  // Another build's image, named by the tag's second HEAD: what the registry says after that build pushed.
  const theirs = `sha256:${'a'.repeat(64)}`;
  let tagPath = '';
  const racing = await startFaultProxy(target.url, {
    intercept: (request, n) => {
      const path = request.url ?? '';
      if (request.method !== 'HEAD' || !/\/manifests\/[0-9a-f]{20,}$/.test(path)) return undefined;
      tagPath = path;
      return n === 2 ? { status: 200, headers: { 'docker-content-digest': theirs, 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': '2' } } : undefined;
    },
  });
  try {
    const result = await buildFunctionImage(parseFunction(fn), { ...options('raced'), registry: `${racing.host}/raced` });
    assert.ok(tagPath !== '', 'the tag was asked about');
    assert.is(result.digest, theirs, 'the digest of the build that pushed first');
    assert.ok(result.cached, 'reported as built by another');
    assert.is(racing.requests.filter((r) => r.method === 'HEAD' && r.path === tagPath).length, 2, 'the cache check, then the race check');
    assert.is(racing.requests.filter((r) => r.method === 'PUT' && r.path === tagPath).length, 0, 'the tag was not moved');
  } finally {
    await racing.stop();
  }
});

test('an upload session the build does not use is cancelled: only the labels change, so the code layer is there already', async () => {
  const fn = functionObject('requests-labels', { runtime: 'nodejs24', handler: 'handler.text', function: fixture('nodejs/handler.js') });
  await buildFunctionImage(parseFunction(fn), options('labels'));
  const { sent, kinds } = await requestsOf(() => buildFunctionImage(parseFunction(fn), options('labels', { labels: { team: 'blue' } })));
  assert.is(count(kinds, 'POST blobs/uploads'), 2);
  assert.is(count(kinds, 'PUT blobs/uploads'), 1, 'only the config was new');
  assert.is(count(kinds, 'DELETE blobs/uploads'), 1, 'the other session was cancelled');
  // distribution 2.8 keeps a cancelled session's hash state on disk until its upload purge, but the session is gone.
  const cancelled = sent.find((r) => r.method === 'DELETE')!.path;
  assert.is((await fetch(`${target.url}${cancelled}`)).status, 404, 'the registry no longer knows the cancelled session');
});

test.run();
