// Retention: pruneFunctionImages() and `function-image-builder prune` against the rig registry (delete
// enabled) and the test API server listing Functions and Deployments. The images are small ones
// pushed through the registry API with chosen creation times, so "newest" is known in advance.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { functionImageTag } from '../../lib/image/identity.ts';
import { readBuilderConfig } from '../../lib/kubernetes/config.ts';
import { pruneFunctionImages, type PrunedRepository } from '../../lib/kubernetes/prune.ts';
import { RegistryClient } from '../../lib/registry/client.ts';
import { parseRuntimeCatalog } from '../../lib/runtime/catalog.ts';
import { exec } from '../support/docker.ts';
import { rejectsWith } from '../support/errors.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import { startKubeApi, type KubeApi } from '../support/kube-api.ts';
import { functionObject, LOOPBACK_SOURCES, startFileServer } from '../support/pipeline.ts';
import { PINNED_CATALOG_JSON, pushSmallImage } from '../support/registry-images.ts';
import { startRegistry, type RegistryHandle } from '../support/registry.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const CATALOG = PINNED_CATALOG_JSON;

let registry: RegistryHandle;
let api: KubeApi;
let client: RegistryClient;
let dir: string;

const fn = (namespace: string, name: string, code: string, handler = 'handler.hello') => {
  const object = functionObject(name, { handler, runtime: 'nodejs24', function: code }) as { metadata: { namespace: string } };
  object.metadata.namespace = namespace;
  return object;
};
const hash = (text: string) => createHash('sha256').update(text).digest('hex');
const day = (n: number) => new Date(Date.UTC(2026, 10, 1 + n)).toISOString();

/** A one-layer image created at `created`, under each tag; its digest. */
const pushImage = (path: string, tags: string[], created: string) => pushSmallImage(client, path, tags, { created });

async function tagsOf(path: string): Promise<string[]> {
  return (await client.listTags(path).catch(() => [])).sort();
}

const functions = {
  hello: fn('default', 'hello', 'module.exports = { hello: () => "v9" }'),
  helloOther: fn('other', 'hello', 'module.exports = { hello: () => "other" }'),
  solo: fn('other', 'solo', 'module.exports = { hello: () => "solo" }'),
  broken: fn('default', 'broken', 'x', 'no-dot'),
};
const images: Record<string, { digest: string; tags: string[] }> = {};

test.before(async () => {
  registry = await startRegistry('anonymous');
  client = new RegistryClient({ registry: registry.host });
  api = await startKubeApi();
  dir = mkdtempSync(join(tmpdir(), 'fib-prune-'));
  const catalog = parseRuntimeCatalog(CATALOG);
  const current = {
    hello: await functionImageTag(functions.hello, { catalog }),
    helloOther: await functionImageTag(functions.helloOther, { catalog }),
    solo: await functionImageTag(functions.solo, { catalog }),
  };
  // fns/hello: shared by default/hello and other/hello, as the registry namespace does not include the Kubernetes one.
  const plan: [string, string[], number][] = [
    ['currentHello', [current.hello], 1],
    ['currentOther', [current.helloOther], 2],
    ['deployedByPullDigest', [hash('c')], 3],
    ['d', [hash('d')], 4],
    ['e', [hash('e')], 5],
    ['f', [hash('f')], 6],
    ['g', [hash('g')], 7],
    ['latest', ['latest'], 0],
    ['twoTags', [hash('i1'), hash('i2')], 0],
    ['deployedByPushTag', [hash('j')], -1],
  ];
  for (const [name, tags, n] of plan) images[name] = { digest: await pushImage('fns/hello', tags, day(n)), tags };
  images.soloOld = { digest: await pushImage('fns/solo', [hash('solo-old')], day(0)), tags: [hash('solo-old')] };
  images.soloCurrent = { digest: await pushImage('fns/solo', [current.solo], day(1)), tags: [current.solo] };
  images.brokenOld = { digest: await pushImage('fns/broken', [hash('broken')], day(0)), tags: [hash('broken')] };

  for (const object of Object.values(functions)) api.create('functions', object);
  const deployment = (namespace: string, name: string, image: string) => ({
    metadata: { name, namespace },
    spec: { selector: { matchLabels: { function: name } }, template: { metadata: { labels: { function: name } }, spec: { containers: [{ name, image }] } } },
  });
  api.create('deployments', deployment('default', 'hello', `localhost:${registry.port}/fns/hello@${images.deployedByPullDigest!.digest}`));
  api.create('deployments', deployment('other', 'legacy', `${registry.host}/fns/hello:${hash('j')}`));
  api.create('deployments', deployment('other', 'unrelated', 'busybox'));
  api.create('configmaps', {
    metadata: { name: 'kubeless-config', namespace: 'kubeless' },
    data: { 'builder-image': 'builder:test', 'function-registry': `${registry.host}/fns`, 'function-registry-pull': `localhost:${registry.port}`, 'runtime-images': CATALOG },
  });
  api.create('secrets', { metadata: { name: 'kubeless-registry-credentials', namespace: 'default' }, type: 'kubernetes.io/dockerconfigjson', stringData: { '.dockerconfigjson': '{"auths":{}}' } });
});

test.after(async () => {
  await api?.close();
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const digests = (repository: PrunedRepository | undefined, which: 'kept' | 'removed') => (repository?.[which] ?? []).map((image) => image.digest).sort();
const named = (...names: string[]) => names.map((name) => images[name]!.digest).sort();

test('dry run: reports what goes (not current, not deployed, not among the newest 2, only build-hash tags) and deletes nothing', async () => {
  const before = await tagsOf('fns/hello');
  const config = await readBuilderConfig(api.kubeConfig, { namespace: 'default' });
  const report = await pruneFunctionImages(api.kubeConfig, config, { keep: 2 });
  assert.ok(report.dryRun);
  const hello = report.repositories.find((r) => r.repository === `${registry.host}/fns/hello`);
  assert.equal(hello?.functions, ['default/hello', 'other/hello']);
  assert.equal(digests(hello, 'removed'), named('d', 'e', 'twoTags'));
  assert.equal(digests(hello, 'kept'), named('currentHello', 'currentOther', 'deployedByPullDigest', 'f', 'g', 'latest', 'deployedByPushTag'));
  const reasons = Object.fromEntries((hello?.kept ?? []).map((image) => [image.digest, image.kept]));
  assert.equal(reasons[images.currentHello!.digest], ['current']);
  assert.equal(reasons[images.deployedByPullDigest!.digest], ['deployed']);
  assert.equal(reasons[images.deployedByPushTag!.digest], ['deployed']);
  assert.equal(reasons[images.g!.digest], ['newest']);
  assert.equal(reasons[images.latest!.digest], ['other-tag']);
  // The broken Function's current image cannot be known: its repository is not pruned, and the report says why.
  assert.is(report.repositories.some((r) => r.repository.endsWith('/fns/broken')), false);
  assert.equal(report.skipped.map((s) => s.function), ['default/broken']);
  assert.match(report.skipped[0]!.reason, /spec\.handler/);
  assert.equal(await tagsOf('fns/hello'), before, 'a dry run deletes nothing');
});

test('a registry that refuses DELETE: E_REGISTRY_DELETE_UNSUPPORTED (a user error) naming the registry', async () => {
  const proxy = await startFaultProxy(registry.url, {
    intercept: (req) => (req.method === 'DELETE' ? { status: 405, body: JSON.stringify({ errors: [{ code: 'UNSUPPORTED', message: 'The operation is unsupported.' }] }) } : undefined),
  });
  try {
    const config = { ...(await readBuilderConfig(api.kubeConfig, { namespace: 'default' })), registry: `${proxy.host}/fns` };
    const error = await rejectsWith(pruneFunctionImages(api.kubeConfig, config, { keep: 2, delete: true }), 'E_REGISTRY_DELETE_UNSUPPORTED');
    assert.is(error.kind, 'user');
    assert.match(error.message, /does not allow deletes \(HTTP 405 UNSUPPORTED/);
    assert.ok(proxy.requests.some((r) => r.method === 'DELETE' && r.status === 405));
  } finally {
    await proxy.stop();
  }
  assert.is((await tagsOf('fns/hello')).length, 11, 'nothing went');
});

test('prune --namespace other --yes (CLI): deletes by digest in the repositories of that namespace only, keeping the rest', async () => {
  const kubeconfig = join(dir, 'kubeconfig.json');
  writeFileSync(kubeconfig, api.kubeConfig.exportConfig());
  const cli = (args: string[]) => exec(process.execPath, [join(ROOT, 'cli', 'main.ts'), 'prune', '--kubeconfig', kubeconfig, '--secret-namespace', 'default', ...args], { env: { PATH: process.env.PATH ?? '', HOME: dir }, timeoutMs: 120_000 });

  const bad = await cli(['--keep', 'many']);
  assert.is(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /--keep takes a whole number/);

  const dry = await cli(['--namespace', 'other', '--keep', '0']);
  assert.is(dry.code, 0, dry.stderr);
  assert.match(dry.stdout, /dry run: 6 images in 2 repositories would be deleted; run again with --yes/);

  const run = await cli(['--namespace', 'other', '--keep', '2', '--yes', '--json']);
  assert.is(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout) as { dryRun: boolean; repositories: PrunedRepository[] };
  assert.is(report.dryRun, false);
  assert.match(run.stderr, new RegExp(`prune: deleted ${registry.host}/fns/hello@${images.d!.digest}`), 'progress names each deletion on stderr');
  assert.equal(report.repositories.map((r) => r.repository).sort(), [`${registry.host}/fns/hello`, `${registry.host}/fns/solo`]);
  const expectedTags = (...names: string[]) => names.flatMap((name) => images[name]!.tags).sort();
  assert.equal(await tagsOf('fns/hello'), expectedTags('currentHello', 'currentOther', 'deployedByPullDigest', 'f', 'g', 'latest', 'deployedByPushTag'));
  for (const name of ['d', 'e', 'twoTags']) assert.is(await client.manifestExists('fns/hello', images[name]!.digest), undefined, `${name} is gone by digest`);
  // fns/solo: two images, keep 2: nothing goes. fns/broken belongs to namespace default: untouched.
  assert.equal(await tagsOf('fns/solo'), expectedTags('soloCurrent', 'soloOld'));
  assert.equal(await tagsOf('fns/broken'), expectedTags('brokenOld'));
});

test('a url source on a private address: its tag is computed with the builder config\'s allowance (so its current image stays), and without it the repository is skipped', async () => {
  const files = await startFileServer();
  try {
    const object = functionObject('from-url', { handler: 'handler.hello', runtime: 'nodejs24', 'function-content-type': 'url', function: files.put('hello.js', 'module.exports = { hello: () => "url" }') }) as { metadata: { namespace: string } };
    object.metadata.namespace = 'urls';
    api.create('functions', object);
    const current = await functionImageTag(object, { catalog: parseRuntimeCatalog(CATALOG), download: LOOPBACK_SOURCES });
    const kept = await pushImage('fns/from-url', [current], day(0));
    const old = await pushImage('fns/from-url', [hash('from-url-old')], day(1));
    const config = await readBuilderConfig(api.kubeConfig, { namespace: 'default' });

    const allowed = await pruneFunctionImages(api.kubeConfig, { ...config, allowPrivateAddresses: LOOPBACK_SOURCES.allowPrivateAddresses }, { namespace: 'urls', keep: 0 });
    assert.not.ok(allowed.skipped.some((s) => s.function === 'urls/from-url'), JSON.stringify(allowed.skipped));
    const repository = allowed.repositories.find((r) => r.repository === `${registry.host}/fns/from-url`);
    assert.equal(digests(repository, 'kept'), [kept]);
    assert.equal(repository?.kept[0]?.kept, ['current']);
    assert.equal(digests(repository, 'removed'), [old]);

    const refused = await pruneFunctionImages(api.kubeConfig, config, { namespace: 'urls', keep: 0 });
    assert.match(refused.skipped.find((s) => s.function === 'urls/from-url')?.reason ?? '', /private|loopback/);
    assert.is(refused.repositories.length, 0, 'nothing of a Function whose image cannot be known is pruned');
  } finally {
    await files.stop();
  }
});

test.run();
