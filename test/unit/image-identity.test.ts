import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BuilderError } from '../../lib/errors.ts';
import { sha256Hex } from '../../lib/function/files.ts';
import { createBuildContext } from '../../lib/image/context.ts';
import { canonicalJson, functionImageTag, identityDocument, planIdentity } from '../../lib/image/identity.ts';
import { resolveBuildPlan, type ResolvePlanOptions } from '../../lib/image/plan.ts';
import { parseRuntimeCatalog } from '../../lib/runtime/catalog.ts';
import { gzip, makeTar } from '../support/archives.ts';
import { LOOPBACK_SOURCES } from '../support/pipeline.ts';

type Json = Record<string, any>;

const catalogJson = [
  { ID: 'nodejs', depName: 'package.json', fileNameSuffix: '.js', versions: [
    { name: 'node14', version: '14', images: [
      { phase: 'installation', image: 'registry.test/kubeless/nodejs-install:14', command: '/kubeless-npm-install.sh' },
      { phase: 'runtime', image: 'registry.test/kubeless/nodejs:14', env: { NODE_PATH: '$(KUBELESS_INSTALL_VOLUME)/node_modules' } }] },
    { name: 'node12', version: '12', images: [
      { phase: 'installation', image: 'registry.test/kubeless/nodejs-install:12', command: '/kubeless-npm-install.sh' },
      { phase: 'runtime', image: 'registry.test/kubeless/nodejs:12', env: { NODE_PATH: '$(KUBELESS_INSTALL_VOLUME)/node_modules' } }] }] },
];

/** What the registries answer for each tag; a test moves a tag by changing it. */
function digests(overrides: Record<string, string> = {}) {
  const table: Record<string, string> = {
    'registry.test/kubeless/nodejs-install:14': 'a'.repeat(64),
    'registry.test/kubeless/nodejs:14': 'b'.repeat(64),
    'registry.test/kubeless/nodejs-install:12': 'c'.repeat(64),
    'registry.test/kubeless/nodejs:12': 'd'.repeat(64),
    ...overrides,
  };
  const asked: string[] = [];
  const resolveImageDigest = async (image: string) => {
    asked.push(image);
    const hex = table[image];
    if (hex === undefined) throw new Error(`unexpected image ${image}`);
    return `${image.replace(/:[^:/]+$/, '')}@sha256:${hex}`;
  };
  return { resolveImageDigest, asked };
}

function options(extra: Partial<ResolvePlanOptions> = {}, moved: Record<string, string> = {}): ResolvePlanOptions {
  return { catalog: parseRuntimeCatalog(catalogJson), resolveImageDigest: digests(moved).resolveImageDigest, ...extra };
}

function fn(change: (f: Json) => void = () => {}): Json {
  const f: Json = {
    apiVersion: 'kubeless.io/v1beta1',
    kind: 'Function',
    metadata: { name: 'hello', namespace: 'default', uid: 'uid-1', labels: { app: 'hello' }, annotations: { a: 'b' }, creationTimestamp: '2024-01-01T00:00:00Z' },
    spec: {
      handler: 'handler.hello',
      runtime: 'nodejs14',
      function: "module.exports = { hello: () => 'hello' };\n",
      deps: '{"dependencies":{"left-pad":"1.3.0"}}',
      timeout: '180',
      deployment: { spec: { template: { spec: { containers: [{ env: [{ name: 'NPM_REGISTRY', value: 'http://npm.test/' }] }] } } } },
      service: { ports: [{ port: 8080 }] },
    },
  };
  change(f);
  return f;
}

const tag = async (f: Json, extra?: Partial<ResolvePlanOptions>, moved?: Record<string, string>) => functionImageTag(f, options(extra, moved));

test('same inputs give the same tag, 64 hex digits, from an object or its YAML/JSON text', async () => {
  const first = await tag(fn());
  assert.match(first, /^[0-9a-f]{64}$/);
  assert.is(await tag(fn()), first);
  assert.is(await tag(JSON.stringify(fn()) as unknown as Json), first);
});

test('the tag is the sha256 of the canonical identity document, which is stable across machines', async () => {
  const plan = await resolveBuildPlan(fn(), options());
  const document = canonicalJson(identityDocument(plan));
  assert.is(planIdentity(plan), sha256Hex(document));
  assert.not.match(document, /\s"|default|uid-1|app|2024/);
  // Pinned: an accidental change to what is hashed (or how) shows up here. When the change is
  // deliberate, bump IDENTITY_FORMAT and update this value.
  assert.is(planIdentity(plan), 'c35fbe74f2728d4e98594a887a67c007d10fc32de6dffba03580848952e0c028');
});

test('canonical JSON sorts keys at every level and has no whitespace', () => {
  assert.is(canonicalJson({ b: 1, a: { d: [2, { f: 'x', e: null }], c: true }, u: undefined }), '{"a":{"c":true,"d":[2,{"e":null,"f":"x"}]},"b":1}');
});

const changes: [string, (f: Json) => void][] = [
  ['runtime', (f) => { f.spec.runtime = 'nodejs12'; }],
  ['handler function', (f) => { f.spec.handler = 'handler.goodbye'; }],
  ['handler module', (f) => { f.spec.handler = 'main.hello'; }],
  ['timeout', (f) => { f.spec.timeout = '181'; }],
  ['one byte of code', (f) => { f.spec.function = f.spec.function.replace("'hello'", "'hellO'"); }],
  ['deps', (f) => { f.spec.deps = '{"dependencies":{"left-pad":"1.3.1"}}'; }],
  ['no deps', (f) => { delete f.spec.deps; }],
  ['install env (NPM_REGISTRY)', (f) => { f.spec.deployment.spec.template.spec.containers[0].env[0].value = 'http://mirror.test/'; }],
  ['another install env var', (f) => { f.spec.deployment.spec.template.spec.containers[0].env.push({ name: 'NPM_CONFIG_EXTRA', value: '--no-audit' }); }],
  ['content type (same bytes as base64)', (f) => { f.spec['function-content-type'] = 'base64'; f.spec.function = Buffer.from(f.spec.function).toString('base64'); }],
];
for (const [what, change] of changes) {
  test(`changing the ${what} gives a new tag`, async () => {
    assert.is.not(await tag(fn(change)), await tag(fn()));
  });
}

test('a runtime image tag that moves to a new digest gives a new tag', async () => {
  assert.is.not(await tag(fn(), {}, { 'registry.test/kubeless/nodejs:14': 'e'.repeat(64) }), await tag(fn()));
  assert.is.not(await tag(fn(), {}, { 'registry.test/kubeless/nodejs-install:14': 'e'.repeat(64) }), await tag(fn()));
});

test('a changed install command or runtime env in the catalog gives a new tag', async () => {
  const base = await tag(fn());
  const command = structuredClone(catalogJson);
  command[0]!.versions[0]!.images[0]!.command = '/kubeless-npm-install.sh --verbose';
  assert.is.not(await tag(fn(), { catalog: parseRuntimeCatalog(command) }), base);
  const env = structuredClone(catalogJson);
  (env[0]!.versions[0]!.images[1] as Json).env = { NODE_PATH: '/elsewhere' };
  assert.is.not(await tag(fn(), { catalog: parseRuntimeCatalog(env) }), base);
});

test('extra image labels and the platform change the image, so they change the tag', async () => {
  const base = await tag(fn());
  const labelled = await tag(fn(), { labels: { 'x.test/team': 'a' } });
  assert.is.not(labelled, base);
  assert.is.not(await tag(fn(), { labels: { 'x.test/team': 'b' } }), labelled);
  assert.is(await tag(fn(), { labels: {} }), base);
  assert.is.not(await tag(fn(), { platform: 'linux/arm64' }), base);
  assert.is(await tag(fn(), { platform: 'linux/amd64' }), base, 'linux/amd64 is the default');
  const plan = await resolveBuildPlan(fn(), options({ labels: { 'x.test/team': 'a' } }));
  assert.match((await createBuildContext(plan)).dockerfile, '"x.test/team"="a"');
});

test('a bad platform, and an extra label under a key the builder sets itself, are refused', async () => {
  const code = async (promise: Promise<unknown>) => promise.then(() => 'ok', (error: BuilderError) => error.code);
  assert.is(await code(tag(fn(), { platform: 'amd64' })), 'E_PLATFORM_INVALID');
  const plan = await resolveBuildPlan(fn(), options({ labels: { 'org.opencontainers.image.version': 'mine' } }));
  assert.is(await code(createBuildContext(plan)), 'E_DOCKERFILE_VALUE');
});

test('a runtime phase command is not in the tag: the Dockerfile never runs it', async () => {
  const withCommand = structuredClone(catalogJson);
  (withCommand[0]!.versions[0]!.images[1] as Json).command = '/never-run.sh';
  const plan = await resolveBuildPlan(fn(), options({ catalog: parseRuntimeCatalog(withCommand) }));
  assert.not.match((await createBuildContext(plan)).dockerfile, 'never-run');
  assert.is(await tag(fn(), { catalog: parseRuntimeCatalog(withCommand) }), await tag(fn()));
});

const irrelevant: [string, (f: Json) => void][] = [
  ['namespace', (f) => { f.metadata.namespace = 'other'; }],
  ['labels, annotations, uid, timestamps', (f) => { f.metadata.labels = { x: 'y' }; f.metadata.annotations = {}; f.metadata.uid = 'uid-2'; f.metadata.creationTimestamp = '2025-01-01T00:00:00Z'; }],
  ['service and autoscaler', (f) => { f.spec.service = { ports: [{ port: 9090 }] }; f.spec.horizontalPodAutoscaler = { spec: { maxReplicas: 3 } }; }],
  ['env from a secret (valueFrom)', (f) => { f.spec.deployment.spec.template.spec.containers[0].env.push({ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }); }],
  ['checksum of an inline source', (f) => { f.spec.checksum = `sha256:${sha256Hex(f.spec.function)}`; }],
  ['explicit default timeout', (f) => { delete f.spec.timeout; }],
];
for (const [what, change] of irrelevant) {
  test(`changing the ${what} keeps the tag`, async () => {
    assert.is(await tag(fn(change)), await tag(fn()));
  });
}

test('without deps the install step does not run, so its env and image do not count', async () => {
  const noDeps = (f: Json) => { delete f.spec.deps; };
  const base = await tag(fn(noDeps));
  assert.is(await tag(fn((f) => { noDeps(f); f.spec.deployment.spec.template.spec.containers[0].env[0].value = 'http://other/'; })), base);
  assert.is(await tag(fn(noDeps), {}, { 'registry.test/kubeless/nodejs-install:14': 'f'.repeat(64) }), base);
  const plan = await resolveBuildPlan(fn(noDeps), options());
  assert.is(plan.phases.installation, undefined);
});

test('a url source with a checksum is identified by the checksum without a download', async () => {
  const tgz = gzip(await makeTar([{ name: 'handler.js', content: 'module.exports = {}' }]));
  const checksum = `sha256:${sha256Hex(tgz)}`;
  // Port 9 (discard) on loopback: any download attempt would fail.
  const url = (f: Json, sum = checksum) => { f.spec['function-content-type'] = 'url+compressedtar'; f.spec.function = 'http://127.0.0.1:9/f.tgz'; f.spec.checksum = sum; };
  const first = await tag(fn(url));
  assert.is(await tag(fn((f) => { url(f); f.spec.function = 'http://127.0.0.1:9/mirror/f.tgz'; })), first, 'the location alone does not matter');
  assert.is.not(await tag(fn((f) => url(f, `sha256:${'0'.repeat(64)}`))), first, 'new content behind the url, new checksum, new tag');
  const plan = await resolveBuildPlan(fn(url), options({ download: LOOPBACK_SOURCES }));
  assert.equal(plan.source, { kind: 'url', checksum });
  try {
    await plan.materialise();
    assert.unreachable('materialise should have tried the download');
  } catch (error) {
    assert.is((error as BuilderError).code, 'E_SOURCE_DOWNLOAD');
  }
});

test('a url source without a checksum is downloaded to be identified: new content, new tag', async () => {
  let body = 'module.exports = { v: 1 }';
  const server = createServer((_request, response) => response.end(body));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/handler.js`;
    const urlFn = () => fn((f) => { f.spec['function-content-type'] = 'url'; f.spec.function = url; });
    const first = await tag(urlFn(), { download: LOOPBACK_SOURCES });
    assert.is(await tag(urlFn(), { download: LOOPBACK_SOURCES }), first);
    body = 'module.exports = { v: 2 }';
    assert.is.not(await tag(urlFn(), { download: LOOPBACK_SOURCES }), first);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test('runtime images given by tag are resolved once each and the Dockerfile builds FROM the digests', async () => {
  const { resolveImageDigest, asked } = digests();
  const plan = await resolveBuildPlan(fn(), { catalog: parseRuntimeCatalog(catalogJson), resolveImageDigest });
  assert.equal(asked.sort(), ['registry.test/kubeless/nodejs-install:14', 'registry.test/kubeless/nodejs:14']);
  const { dockerfile } = await createBuildContext(plan);
  const froms = dockerfile.split('\n').filter((line) => line.startsWith('FROM '));
  assert.equal(froms, [`FROM registry.test/kubeless/nodejs-install@sha256:${'a'.repeat(64)} AS deps`, `FROM registry.test/kubeless/nodejs@sha256:${'b'.repeat(64)}`]);
});

test('a resolver that answers without a digest, a tag-only image without a resolver, and a prebuilt Function fail clearly', async () => {
  const codes = async (promise: Promise<unknown>) => promise.then(() => 'ok', (error: BuilderError) => error.code);
  assert.is(await codes(resolveBuildPlan(fn(), { catalog: parseRuntimeCatalog(catalogJson) })), 'E_IMAGE_NOT_PINNED');
  assert.is(await codes(resolveBuildPlan(fn(), { catalog: parseRuntimeCatalog(catalogJson), resolveImageDigest: async (image) => image })), 'E_IMAGE_NOT_PINNED');
  assert.is(await codes(resolveBuildPlan(fn(), { catalog: parseRuntimeCatalog(catalogJson), resolveImageDigest: async () => `other/repo@sha256:${'a'.repeat(64)}` })), 'E_IMAGE_NOT_PINNED');
  const prebuilt = fn((f) => { f.spec.deployment.spec.template.spec.containers[0].image = 'registry.test/fns/hello:1'; });
  assert.is(await codes(resolveBuildPlan(prebuilt, options())), 'E_FUNCTION_PREBUILT');
  assert.is(await codes(resolveBuildPlan(fn((f) => { f.spec.runtime = 'nodejs24'; }), options())), 'E_RUNTIME_UNKNOWN');
});

test.run();
