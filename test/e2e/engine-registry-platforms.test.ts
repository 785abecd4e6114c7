// The registry engine and multi-platform runtime images: a runtime image that is an index gives an
// index of function images (every platform, or those asked for) when the function has no install
// step, and the requested platform only, with a warning, when it has one. And the CLI's --engine.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { buildFunctionImage, type BuildFunctionOptions, type BuildLogEvent } from '../../lib/build.ts';
import { parseReference } from '../../lib/image/reference.ts';
import { RegistryClient } from '../../lib/registry/client.ts';
import { parseDockerConfig } from '../../lib/registry/credentials.ts';
import { MEDIA_TYPE, sha256Digest } from '../../lib/registry/manifest.ts';
import { exec } from '../support/docker.ts';
import { callBuiltFunction, functionObject, startPipelineRig, type PipelineRig } from '../support/pipeline.ts';
import type { RegistryHandle } from '../support/registry.ts';
import { parseFunction } from '../../lib/function/parse.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const FIXTURES = join(ROOT, 'fixtures', 'functions', 'runtimes');
const fixture = (path: string) => readFileSync(join(FIXTURES, path), 'utf8');

let rig: PipelineRig;
let target: RegistryHandle;
/** The rig's catalog with the nodejs runtime image replaced by an index (linux/amd64 + linux/arm64), pinned by its digest. */
let multiCatalog: unknown;

test.before(async () => {
  rig = await startPipelineRig('engine-registry-platforms', ['anonymous']);
  target = rig.targets.anonymous!;
  const node = rig.catalog.find((r) => r.ID === 'nodejs')!.versions[0]!.images.find((i) => i.phase === 'runtime')!;
  const ref = parseReference(node.image);
  const client = new RegistryClient({ registry: ref.registry, credentials: parseDockerConfig(rig.dockerConfigJson) });
  const amd64 = await client.getManifest(ref.repository, ref.tag!);
  const config = JSON.parse((await client.getBlob(ref.repository, (amd64.json.config as { digest: string }).digest)).toString()) as Record<string, unknown>;
  // The same layers under an arm64 config: enough for an index whose entries differ; only amd64 runs here.
  const armConfig = Buffer.from(JSON.stringify({ ...config, architecture: 'arm64', variant: 'v8' }));
  await client.pushBlob(ref.repository, armConfig);
  const arm = Buffer.from(JSON.stringify({ ...amd64.json, config: { mediaType: MEDIA_TYPE.dockerConfig, digest: sha256Digest(armConfig), size: armConfig.length } }));
  await client.putManifest(ref.repository, sha256Digest(arm), arm, MEDIA_TYPE.dockerManifest);
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.dockerManifestList,
    manifests: [
      { mediaType: MEDIA_TYPE.dockerManifest, digest: amd64.digest, size: amd64.size, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: MEDIA_TYPE.dockerManifest, digest: sha256Digest(arm), size: arm.length, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ],
  }));
  const pushed = await client.putManifest(ref.repository, 'multi', index, MEDIA_TYPE.dockerManifestList);
  multiCatalog = JSON.parse(JSON.stringify(rig.catalog).replaceAll(`"${node.image}"`, `"${ref.registry}/${ref.repository}@${pushed.digest}"`));
});

test.after(async () => {
  await rig?.stop();
});

function options(namespace: string, extra: BuildFunctionOptions = {}): BuildFunctionOptions {
  return { registry: `${target.host}/${namespace}`, catalog: multiCatalog as object, dockerConfig: rig.dockerConfigJson, engine: 'registry', networkMode: 'host', ...extra };
}

async function rawManifest(reference: string): Promise<Record<string, unknown>> {
  const result = await exec('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reference}`]);
  assert.is(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

test('no deps: an index with the code layer appended for every platform; docker pulls and runs its platform', async () => {
  const fn = functionObject('multi-nodeps', { runtime: 'nodejs24', handler: 'handler.text', function: fixture('nodejs/handler.js') });
  const result = await buildFunctionImage(parseFunction(fn), options('multi'));
  const index = await rawManifest(result.reference);
  assert.is(index.mediaType, MEDIA_TYPE.dockerManifestList);
  const platforms = (index.manifests as { platform: { architecture: string } }[]).map((m) => m.platform.architecture);
  assert.equal(platforms, ['amd64', 'arm64']);
  const arm = (index.manifests as { digest: string }[])[1]!.digest;
  const armConfig = await exec('skopeo', ['inspect', '--config', '--tls-verify=false', `docker://${target.host}/multi/multi-nodeps@${arm}`]);
  assert.is((JSON.parse(armConfig.stdout) as { architecture: string }).architecture, 'arm64');
  const answer = await callBuiltFunction(result.reference, target, 'multi');
  assert.is(answer.text, 'got 5 characters: multi');

  const only = await buildFunctionImage(parseFunction(functionObject('multi-arm', { runtime: 'nodejs24', handler: 'handler.text', function: fixture('nodejs/handler.js') })), options('multi', { platforms: ['linux/arm64'] }));
  const single = await rawManifest(only.reference);
  assert.is(single.mediaType, MEDIA_TYPE.dockerManifest, 'one platform asked for: one image manifest');
});

test('with deps: only the requested platform is built, and a warning says so', async () => {
  const fn = functionObject('multi-deps', { runtime: 'nodejs24', handler: 'handler.hello', function: fixture('nodejs-deps/handler.js'), deps: fixture('nodejs-deps/package.json') });
  const log: BuildLogEvent[] = [];
  const result = await buildFunctionImage(parseFunction(fn), options('multi', { log: (e) => log.push(e) }));
  assert.is((await rawManifest(result.reference)).mediaType, MEDIA_TYPE.dockerManifest);
  const warning = log.find((e) => e.event === 'single-platform');
  assert.ok(warning, 'a single-platform warning is logged');
  assert.match(String(warning.message), 'only linux/amd64 is built');
  assert.is((await callBuiltFunction(result.reference, target, 'deps')).text, 'hello deps, from fib-greeting 1.0.0');
});

test('CLI: --engine registry builds and --json reports the bytes; an unknown engine is a usage error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fib-engine-cli-'));
  try {
    const fnFile = join(dir, 'fn.yaml');
    writeFileSync(fnFile, stringify(functionObject('cli-engine', { runtime: 'nodejs24', handler: 'handler.text', function: fixture('nodejs/handler.js') })));
    writeFileSync(join(dir, 'runtimes.json'), JSON.stringify(rig.catalog));
    writeFileSync(join(dir, 'config.json'), rig.dockerConfigJson);
    const cli = (args: string[]) =>
      exec(process.execPath, [join(ROOT, 'cli', 'main.ts'), 'build', fnFile, '--registry', `${target.host}/cli`, '--runtimes', join(dir, 'runtimes.json'), '--docker-config', join(dir, 'config.json'), ...args], {
        env: { PATH: process.env.PATH ?? '', HOME: dir },
        timeoutMs: 300_000,
      });
    const run = await cli(['--engine', 'registry', '--json']);
    assert.is(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout) as { bytes: { uploaded: number; mounted: number; skipped: number }; reference: string };
    assert.ok(result.bytes.uploaded > 0);
    assert.is((await callBuiltFunction(result.reference, target, 'cli')).text, 'got 3 characters: cli');
    const bad = await cli(['--engine', 'kaniko']);
    assert.is(bad.code, 2);
    assert.match(bad.stderr, 'E_USAGE');
    assert.match(bad.stderr, '--engine');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
