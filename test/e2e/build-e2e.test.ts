// End to end: Kubeless Functions of the nodejs and python fixture runtimes, every content type,
// with and without deps, built by buildFunctionImage() through the real Docker Engine, pushed to
// registries of every kind (base images always come from a private Basic-auth registry), gone from
// the daemon afterwards, pulled back, run, and called over HTTP. Plus: a push to a registry whose
// credentials differ from the base registry's, base images the daemon has to pull during the build,
// the minikube-style TLS Docker endpoint, the local-only (push: false) workflow and prebuilt Functions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildFunctionImage, type BuildFunctionOptions, type BuildLogEvent, type BuildProgress, type BuildResult } from '../../lib/build.ts';
import { parseDockerConfig } from '../../lib/registry/credentials.ts';
import { bzip2, gzip, makeTar, makeZip, xz, type TestEntry } from '../support/archives.ts';
import { dockerTlsEndpoint } from '../support/docker-tls.ts';
import { freePort } from '../support/net.ts';
import { callBuiltFunction, functionObject, hasLocalImage, LOOPBACK_SOURCES, remoteOnlyCatalog, startPipelineRig, type PipelineRig } from '../support/pipeline.ts';
import type { RegistryHandle } from '../support/registry.ts';
import { parseFunction } from '../../lib/function/parse.ts';

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'functions', 'runtimes');
const fixture = (path: string) => readFileSync(join(FIXTURES, path), 'utf8');
const sha256 = (data: string | Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

let rig: PipelineRig;

test.before(async () => {
  rig = await startPipelineRig('build-e2e', ['anonymous', 'basic', 'tls', 'token']);
});

test.after(async () => {
  await rig?.stop();
});

function options(target: RegistryHandle, extra: BuildFunctionOptions = {}): BuildFunctionOptions {
  return { registry: `${target.host}/functions`, catalog: rig.catalog, dockerConfig: rig.dockerConfigJson, registries: rig.registries, download: LOOPBACK_SOURCES, ...extra };
}

/** Builds, checks the result and the daemon, then pulls the image back and calls the function. */
async function buildAndCall(name: string, fn: Record<string, unknown>, target: RegistryHandle, body: string, expected: string, extra: BuildFunctionOptions = {}): Promise<BuildResult> {
  const result = await buildFunctionImage(parseFunction(fn), options(target, extra));
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

// ---------------------------------------------------------------------------------------------
// The matrix: nodejs and python × every Kubeless content type × no deps / spec.deps, plus +deps
// cases; targets, compressions, checksums and TLS verification rotate over the cases.

type Runtime = 'nodejs' | 'python';
type DepsMode = 'none' | 'spec.deps' | '+deps';
type TargetKind = 'anonymous' | 'basic' | 'tls';
type Compression = 'tar' | 'gzip' | 'bzip2' | 'xz';

const RUNTIMES = {
  nodejs: {
    runtime: 'nodejs24',
    short: 'node',
    suffix: '.js',
    depName: 'package.json',
    code: fixture('nodejs/handler.js'),
    codeWithDeps: fixture('nodejs-deps/handler.js'),
    deps: fixture('nodejs-deps/package.json'),
    // Put in archives whose deps come from spec.deps: installed by mistake, it fails (nothing offline has it).
    staleDeps: JSON.stringify({ name: 'stale', version: '1.0.0', private: true, dependencies: { 'fib-missing': 'file:/offline-packages/fib-missing-9.9.9.tgz' } }),
  },
  python: {
    runtime: 'python3.11',
    short: 'py',
    suffix: '.py',
    depName: 'requirements.txt',
    code: fixture('python/handler.py'),
    codeWithDeps: fixture('python-deps/handler.py'),
    deps: fixture('python-deps/requirements.txt'),
    staleDeps: 'fib-missing==9.9.9\n',
  },
} as const;

const CONTENT_TYPES = ['text', 'base64', 'url', 'base64+zip', 'base64+compressedtar', 'url+zip', 'url+compressedtar'] as const;
type ContentType = (typeof CONTENT_TYPES)[number];
/** The archive content types built once more with +deps (the deps file from the archive), per runtime. */
const WITH_ARCHIVE_DEPS: Record<Runtime, ContentType[]> = { nodejs: ['base64+zip', 'url+compressedtar'], python: ['url+zip', 'base64+compressedtar'] };
const COMPRESSIONS: Record<Compression, { ext: string; compress: (tar: Buffer) => Buffer }> = {
  tar: { ext: 'tar', compress: (tar) => tar },
  gzip: { ext: 'tar.gz', compress: gzip },
  bzip2: { ext: 'tar.bz2', compress: bzip2 },
  xz: { ext: 'tar.xz', compress: xz },
};
const TARGETS: TargetKind[] = ['anonymous', 'basic', 'tls'];

interface MatrixCase {
  name: string;
  runtime: Runtime;
  contentType: ContentType;
  deps: DepsMode;
  target: TargetKind;
  compression?: Compression;
  checksum: boolean;
  /** TLS target reached without certificate verification (function-registry-tls-verify: "false") rather than with its CA. */
  noVerify: boolean;
}

const MATRIX: MatrixCase[] = [];
{
  let tarCases = 0;
  let tlsCases = 0;
  const sourceCases = { text: 0, base64: 0, url: 0 };
  for (const runtime of ['nodejs', 'python'] as const) {
    const modes: [ContentType, DepsMode][] = CONTENT_TYPES.flatMap((ct) => [[ct, 'none'], [ct, 'spec.deps']] as [ContentType, DepsMode][]);
    for (const ct of WITH_ARCHIVE_DEPS[runtime]) modes.push([ct, '+deps']);
    for (const [contentType, deps] of modes) {
      const i = MATRIX.length;
      const source = contentType.split('+')[0] as 'text' | 'base64' | 'url';
      const target = TARGETS[i % TARGETS.length]!;
      const compression = contentType.endsWith('compressedtar') ? (['tar', 'gzip', 'bzip2', 'xz'] as const)[tarCases++ % 4] : undefined;
      // Periods that do not divide the list's structure, so no setting goes only with deps or only without.
      const noVerify = target === 'tls' && tlsCases++ % 3 === 0;
      const name = `${RUNTIMES[runtime].short}-${contentType.replace(/\+/g, '-')}-${deps === 'none' ? 'nodeps' : deps === '+deps' ? 'archive-deps' : 'spec-deps'}`;
      MATRIX.push({ name, runtime, contentType, deps, target, checksum: sourceCases[source]++ % 3 === 0, noVerify, ...(compression ? { compression } : {}) });
    }
  }
}

/** The Function spec of a case: source, archive and deps as the case says. */
async function matrixSpec(c: MatrixCase): Promise<Record<string, unknown>> {
  const r = RUNTIMES[c.runtime];
  const code = c.deps === 'none' ? r.code : r.codeWithDeps;
  const [source, archive] = c.contentType.split('+') as ['text' | 'base64' | 'url', 'zip' | 'compressedtar' | undefined];
  let bytes: Buffer = Buffer.from(code);
  let ext: string = r.suffix;
  if (archive !== undefined) {
    const entries: TestEntry[] = [
      { name: `handler${r.suffix}`, content: code },
      { name: 'lib/', type: 'directory' },
      { name: 'lib/notes.txt', content: 'a subdirectory travels with the function\n' },
    ];
    if (c.deps === '+deps') entries.push({ name: r.depName, content: r.deps });
    if (c.deps === 'spec.deps') entries.push({ name: r.depName, content: r.staleDeps });
    if (archive === 'zip') {
      bytes = makeZip(entries);
      ext = '.zip';
    } else {
      const compression = COMPRESSIONS[c.compression!];
      bytes = compression.compress(await makeTar(entries));
      ext = `.${compression.ext}`;
    }
  }
  const spec: Record<string, unknown> = {
    handler: c.deps === 'none' ? 'handler.text' : 'handler.hello',
    runtime: r.runtime,
    'function-content-type': c.deps === '+deps' ? `${c.contentType}+deps` : c.contentType,
    function: source === 'text' ? code : source === 'base64' ? bytes.toString('base64') : rig.files.put(`${c.name}${ext}`, bytes),
  };
  if (c.deps === 'spec.deps') spec.deps = r.deps;
  if (c.checksum) spec.checksum = sha256(bytes);
  return spec;
}

for (const c of MATRIX) {
  const how = [c.contentType + (c.compression ? ` (${c.compression})` : ''), c.deps === 'none' ? 'no deps' : c.deps === '+deps' ? '+deps' : 'spec.deps', ...(c.checksum ? ['checksum'] : [])];
  const where = c.target === 'tls' ? (c.noVerify ? 'tls registry, no certificate verification' : 'tls registry, CA given') : `${c.target} registry`;
  test(`${c.runtime}, ${how.join(', ')} → ${where}`, async () => {
    const target = rig.targets[c.target]!;
    const body = c.name.slice(0, 12);
    const expected = c.deps === 'none' ? `got ${body.length} characters: ${body}` : GREETING(body);
    const extra: BuildFunctionOptions = c.noVerify ? { registries: { [target.host]: { tlsVerify: false } } } : {};
    await buildAndCall(c.name, functionObject(c.name, await matrixSpec(c)), target, body, expected, extra);
  });
}

test('the matrix covers every content type with and without deps for both runtimes, +deps, every compression and every target', () => {
  for (const runtime of ['nodejs', 'python'] as const) {
    for (const contentType of CONTENT_TYPES) {
      for (const deps of ['none', 'spec.deps'] as const) assert.ok(MATRIX.some((c) => c.runtime === runtime && c.contentType === contentType && c.deps === deps), `${runtime} ${contentType} ${deps}`);
    }
    assert.ok(MATRIX.some((c) => c.runtime === runtime && c.deps === '+deps' && c.contentType.includes('zip')), `${runtime} zip +deps`);
    assert.ok(MATRIX.some((c) => c.runtime === runtime && c.deps === '+deps' && c.contentType.includes('compressedtar')), `${runtime} compressedtar +deps`);
    for (const compression of Object.keys(COMPRESSIONS)) assert.ok(MATRIX.some((c) => c.runtime === runtime && c.compression === compression), `${runtime} ${compression}`);
    for (const target of TARGETS) {
      assert.ok(MATRIX.some((c) => c.runtime === runtime && c.target === target && c.deps === 'none'), `${runtime} → ${target} without deps`);
      assert.ok(MATRIX.some((c) => c.runtime === runtime && c.target === target && c.deps !== 'none'), `${runtime} → ${target} with deps`);
    }
  }
  for (const deps of [(c: MatrixCase) => c.deps === 'none', (c: MatrixCase) => c.deps !== 'none']) {
    assert.ok(MATRIX.some((c) => deps(c) && c.noVerify) && MATRIX.some((c) => deps(c) && c.target === 'tls' && !c.noVerify), 'tls with and without verification');
    for (const source of ['text', 'base64', 'url']) {
      assert.ok(MATRIX.some((c) => deps(c) && c.contentType.startsWith(source) && c.checksum) && MATRIX.some((c) => deps(c) && c.contentType.startsWith(source) && !c.checksum), `${source} with and without checksum`);
    }
  }
});

test('a handler whose module has a directory (lib/handler) is refused before anything is built', async () => {
  const tgz = gzip(await makeTar([
    { name: 'lib/', type: 'directory' },
    { name: 'lib/handler.js', content: fixture('nodejs-deps/handler.js') },
    { name: 'package.json', content: fixture('nodejs-deps/package.json') },
  ]));
  const fn = functionObject('node-tgz-dir', { handler: 'lib/handler.hello', runtime: 'nodejs24', 'function-content-type': 'base64+compressedtar+deps', function: tgz.toString('base64') });
  // Refused by the parse, which every caller of buildFunctionImage does first.
  assert.throws(() => parseFunction(fn), (error: { code?: string }) => error.code === 'E_FUNCTION_INVALID');
});

/** The credentials the build handed the Docker Engine (the `credentials` log events with a purpose). */
function engineCredentials(events: BuildLogEvent[]): { purpose: unknown; registry: unknown; key: unknown }[] {
  return events.filter((e) => e.event === 'credentials' && e.purpose !== undefined).map(({ purpose, registry, key }) => ({ purpose, registry, key }));
}

test('base images from one credentialed registry, pushed to another with different credentials (token auth), both in one docker config', async () => {
  const token = rig.targets.token!;
  const source = rig.source;
  const auths = { ...(JSON.parse(rig.dockerConfigJson) as { auths: object }).auths, ...(JSON.parse(token.dockerConfigJson!) as { auths: object }).auths };
  assert.is.not(token.username, source.username);
  const fn = functionObject('node-two-registries', { handler: 'handler.hello', runtime: 'nodejs24', function: fixture('nodejs-deps/handler.js'), deps: fixture('nodejs-deps/package.json') });
  const log: BuildLogEvent[] = [];
  await buildAndCall('node-two-registries', fn, token, 'two', GREETING('two'), { dockerConfig: JSON.stringify({ auths }), log: (e) => log.push(e) });
  assert.equal(engineCredentials(log), [
    { purpose: 'pull base image', registry: source.host, key: source.host },
    { purpose: 'push', registry: token.host, key: token.host },
  ]);
  assert.ok(
    log.some((e) => e.event === 'credentials' && e.purpose === undefined && e.registry === token.host && e.key === token.host),
    'the builder checked the target with the push user too',
  );
  // The token server saw the push user's own credentials (not the base registry's).
  const granted = token.tokenServer!.requests.filter((entry) => entry.username === token.username && entry.granted.some((g) => g.actions.includes('push')));
  assert.ok(granted.length > 0, 'the push user was granted push on the target');
  assert.not.ok(JSON.stringify(log).includes(token.password!) || JSON.stringify(log).includes(source.password!), 'no password in the log');
});

test('base images the daemon does not have are pulled during buildFunctionImage with the base registry\'s credentials', async () => {
  const catalog = await remoteOnlyCatalog(rig);
  const bases = catalog.flatMap((runtime) => runtime.versions.flatMap((version) => version.images.map((phase) => phase.image)));
  for (const base of bases) assert.not.ok(await hasLocalImage(base), `${base} is not in the daemon before the build`);
  const fn = functionObject('node-pulled-bases', { handler: 'handler.hello', runtime: 'nodejs24', function: fixture('nodejs-deps/handler.js'), deps: fixture('nodejs-deps/package.json') });
  const events: BuildProgress[] = [];
  const log: BuildLogEvent[] = [];
  await buildAndCall('node-pulled-bases', fn, rig.targets.anonymous!, 'pulled', GREETING('pulled'), { catalog, onProgress: (e) => events.push(e), log: (e) => log.push(e) });
  const pulls = events.filter((e) => e.kind === 'pull');
  assert.ok(pulls.some((e) => e.kind === 'pull' && /^Pulling from .*-remote\/nodejs$/.test(e.status)), `a pull of the runtime image: ${JSON.stringify(pulls)}`);
  assert.ok(pulls.some((e) => e.kind === 'pull' && /^Pulling from .*-remote\/nodejs-install$/.test(e.status)), `a pull of the installation image: ${JSON.stringify(pulls)}`);
  assert.equal(engineCredentials(log), [
    { purpose: 'pull base image', registry: rig.source.host, key: rig.source.host },
    { purpose: 'push', registry: rig.targets.anonymous!.host, key: null },
  ]);
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
  const local = await buildFunctionImage(parseFunction(fn), { catalog: rig.catalog, dockerConfig: twoEntries, registries: rig.registries, push: false });
  assert.is(local.pushed, false);
  assert.is(local.cached, false);
  assert.is(local.image, `kubeless.local/node-local:${local.tag}`);
  assert.is(local.reference, local.image);
  assert.match(local.digest, /^sha256:/);
  assert.ok(await hasLocalImage(local.image));
  const again = await buildFunctionImage(parseFunction(fn), { catalog: rig.catalog, dockerConfig: twoEntries, registries: rig.registries, push: false });
  assert.is(again.cached, true);
  assert.is(again.digest, local.digest);
  // With a registry named, the local name is the one a Deployment would use.
  const named = await buildFunctionImage(parseFunction(fn), { ...options(rig.targets.anonymous!), push: false });
  assert.is(named.image, `${rig.targets.anonymous!.host}/functions/node-local:${local.tag}`);
  assert.is(named.digest, local.digest, 'same content, same image');
});

test('a prebuilt Function (containers[0].image) is returned as is: no registry, no daemon', async () => {
  const closed = await freePort();
  const fn = functionObject('prebuilt', { handler: 'handler.text', runtime: 'nodejs24', function: 'x' });
  (fn.spec as Record<string, unknown>).deployment = { spec: { template: { spec: { containers: [{ image: 'example.com/team/prebuilt@sha256:' + 'a'.repeat(64) }] } } } };
  const result = await buildFunctionImage(parseFunction(fn), { registry: `127.0.0.1:${closed}/nowhere`, catalog: rig.catalog, docker: { DOCKER_HOST: `tcp://127.0.0.1:${closed}` } });
  assert.is(result.prebuilt, true);
  assert.is(result.reference, 'example.com/team/prebuilt@sha256:' + 'a'.repeat(64));
  assert.is(result.digest, 'sha256:' + 'a'.repeat(64));
});

test('the Kubeless default target: no registry given, the docker config\'s only entry names host and namespace', async () => {
  const source = rig.source;
  const config = parseDockerConfig(rig.dockerConfigJson);
  assert.is(config.entries.length, 1);
  const fn = functionObject('node-default-target', { handler: 'handler.text', runtime: 'nodejs24', function: fixture('nodejs/handler.js').replace('got', 'received') });
  const result = await buildFunctionImage(parseFunction(fn), { catalog: rig.catalog, dockerConfig: config });
  assert.is(result.image, `${source.host}/${source.username}/node-default-target:${result.tag}`);
  const answer = await callBuiltFunction(result.reference, source, 'abc');
  assert.is(answer.text, 'received 3 characters: abc');
});

test.run();
