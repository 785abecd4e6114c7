// Push name ≠ pull name (`function-registry-pull`): the build pushes to and checks one address, while
// the reference it returns, and the Deployment patch made from it, name the address the nodes pull
// from, with the same digest. The rig registry answers on 127.0.0.1 and on localhost alike, so the
// pull name is a real second name of the same registry: the Docker Engine pulls and runs it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { buildFunctionImage } from '../../lib/build.ts';
import { readBuilderConfig } from '../../lib/kubernetes/config.ts';
import { functionDeploymentPatch, WAIT_CONTAINER_NAME } from '../../lib/kubernetes/deployment.ts';
import { scheduleBuild } from '../../lib/kubernetes/schedule.ts';
import { RegistryClient } from '../../lib/registry/client.ts';
import { exec } from '../support/docker.ts';
import { rejectsWith } from '../support/errors.ts';
import { startKubeApi, type KubeApi } from '../support/kube-api.ts';
import { callBuiltFunction, functionObject, registryTags, startPipelineRig, type PipelineRig } from '../support/pipeline.ts';
import { parseFunction } from '../../lib/function/parse.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const FIXTURE = readFileSync(join(ROOT, 'fixtures', 'functions', 'runtimes', 'nodejs', 'handler.js'), 'utf8');

let rig: PipelineRig;
let api: KubeApi;
let pushRegistry: string;
let pullRegistry: string;
let dir: string;

test.before(async () => {
  rig = await startPipelineRig('pull-registry', ['anonymous']);
  const target = rig.targets.anonymous!;
  pushRegistry = `${target.host}/pushed`;
  pullRegistry = `localhost:${target.port}`;
  api = await startKubeApi();
  dir = mkdtempSync(join(tmpdir(), 'fib-pull-registry-'));
});

test.after(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await api?.close();
  await rig?.stop();
});

const hello = functionObject('pull-hello', { handler: 'handler.echo', runtime: 'nodejs24', function: FIXTURE });

async function digestAtPushName(path: string, tag: string): Promise<string | undefined> {
  const client = new RegistryClient({ registry: rig.targets.anonymous!.host });
  return (await client.manifestExists(path, tag))?.digest;
}

test('the reference names the pull registry with the pushed digest; the Engine pulls it by that name and the function answers', async () => {
  const options = { registry: pushRegistry, pullRegistry, catalog: rig.catalog, dockerConfig: rig.dockerConfigJson };
  const built = await buildFunctionImage(parseFunction(hello), options);
  const target = rig.targets.anonymous!;
  assert.ok(built.pushed);
  assert.is(built.image, `${target.host}/pushed/pull-hello:${built.tag}`, 'the pushed name stays what was checked and pushed');
  assert.is(built.pullImage, `${pullRegistry}/pushed/pull-hello:${built.tag}`);
  assert.is(built.reference, `${pullRegistry}/pushed/pull-hello@${built.digest}`);
  assert.is(await digestAtPushName('pushed/pull-hello', built.tag), built.digest, 'the push name holds the same digest');

  const again = await buildFunctionImage(parseFunction(hello), options);
  assert.ok(again.cached);
  assert.is(again.reference, built.reference, 'a cached check answers with the pull name too');

  const answer = await callBuiltFunction(built.reference, undefined, 'ping');
  assert.is(answer.status, 200, answer.text);
  assert.is((JSON.parse(answer.text) as { data: string }).data, 'ping');
});

test('a pull registry with a namespace replaces the namespace; an invalid one is E_TARGET_INVALID before anything is pushed', async () => {
  const fn = functionObject('pull-ns', { handler: 'handler.echo', runtime: 'nodejs24', function: FIXTURE });
  const target = rig.targets.anonymous!;
  const bad = await rejectsWith(
    buildFunctionImage(parseFunction(fn), { registry: pushRegistry, pullRegistry: 'localhost:5000/Upper Case', catalog: rig.catalog, dockerConfig: rig.dockerConfigJson }),
    'E_TARGET_INVALID',
  );
  assert.match(bad.message, /pull registry "localhost:5000\/Upper Case"/);
  assert.equal(await registryTags(target, 'pushed/pull-ns'), [], 'nothing was pushed');

  const built = await buildFunctionImage(parseFunction(fn), { registry: pushRegistry, pullRegistry: `${pullRegistry}/mirror`, catalog: rig.catalog, dockerConfig: rig.dockerConfigJson });
  assert.is(built.reference, `${pullRegistry}/mirror/pull-ns@${built.digest}`);
  assert.is(built.image, `${target.host}/pushed/pull-ns:${built.tag}`);
});

test('kubeless-config function-registry-pull: scheduleBuild returns the pull name, and the Deployment patch runs it while its wait container checks the push name', async () => {
  const target = rig.targets.anonymous!;
  // The image exists (first test), so scheduleBuild answers from the registry and creates no Job.
  api.create('configmaps', {
    metadata: { name: 'kubeless-config', namespace: 'kubeless' },
    data: { 'builder-image': 'builder:test', 'function-registry': pushRegistry, 'function-registry-pull': pullRegistry, 'runtime-images': JSON.stringify(rig.catalog) },
  });
  api.create('secrets', { metadata: { name: 'kubeless-registry-credentials', namespace: 'default' }, type: 'kubernetes.io/dockerconfigjson', stringData: { '.dockerconfigjson': rig.dockerConfigJson } });
  const config = await readBuilderConfig(api.kubeConfig, { namespace: 'default' });
  assert.is(config.pullRegistry, pullRegistry);
  const scheduled = await scheduleBuild(api.kubeConfig, hello, config);
  assert.ok(scheduled.cached);
  assert.is(scheduled.job, undefined);
  assert.is(scheduled.reference, `${pullRegistry}/pushed/pull-hello@${scheduled.digest}`);
  assert.is(await digestAtPushName('pushed/pull-hello', scheduled.tag), scheduled.digest);

  const patch = functionDeploymentPatch(scheduled, { wait: { builderImage: 'builder:test' } });
  const spec = patch.spec!.template.spec!;
  assert.is(spec.containers[0]!.image, scheduled.reference);
  const wait = spec.initContainers!.find((c) => c.name === WAIT_CONTAINER_NAME)!;
  assert.equal(wait.args!.slice(0, 2), ['wait', `${target.host}/pushed/pull-hello:${scheduled.tag}`]);

  // While the build runs there is no digest yet: the function container gets the tag under the pull name.
  const pending = functionDeploymentPatch({ function: scheduled.function, image: scheduled.image, pullImage: scheduled.pullImage }, { wait: { builderImage: 'builder:test' } });
  assert.is(pending.spec!.template.spec!.containers[0]!.image, `${pullRegistry}/pushed/pull-hello:${scheduled.tag}`);
});

test('the registry engine\'s fast path (builder-engine: registry) answers with the pull name too', async () => {
  const config = api.get('configmaps', 'kubeless', 'kubeless-config')!;
  api.replace('configmaps', { ...config, data: { ...config.data, 'builder-engine': 'registry' } });
  try {
    const fast = functionObject('pull-fast', { handler: 'handler.echo', runtime: 'nodejs24', function: FIXTURE });
    const scheduled = await scheduleBuild(api.kubeConfig, fast, await readBuilderConfig(api.kubeConfig, { namespace: 'default' }));
    assert.is(scheduled.job, undefined, 'appended in-process, no Job');
    assert.is(scheduled.reference, `${pullRegistry}/pushed/pull-fast@${scheduled.digest}`);
    assert.is(scheduled.pullImage, `${pullRegistry}/pushed/pull-fast:${scheduled.tag}`);
    assert.is(await digestAtPushName('pushed/pull-fast', scheduled.tag), scheduled.digest);
  } finally {
    api.replace('configmaps', config);
  }
});

test('build --pull-registry prints the pull name', async () => {
  const files = { fn: join(dir, 'function.yaml'), runtimes: join(dir, 'runtime-images.json'), dockerConfig: join(dir, 'config.json') };
  writeFileSync(files.fn, stringify(hello));
  writeFileSync(files.runtimes, JSON.stringify(rig.catalog));
  writeFileSync(files.dockerConfig, rig.dockerConfigJson);
  const run = await exec(
    process.execPath,
    [join(ROOT, 'cli', 'main.ts'), 'build', files.fn, '--registry', pushRegistry, '--pull-registry', pullRegistry, '--runtimes', files.runtimes, '--docker-config', files.dockerConfig],
    { env: { PATH: process.env.PATH ?? '', HOME: dir }, timeoutMs: 120_000 },
  );
  assert.is(run.code, 0, run.stderr);
  assert.match(run.stdout.trim(), new RegExp(`^${pullRegistry.replace(/\./g, '\\.')}/pushed/pull-hello@sha256:[0-9a-f]{64}$`));
});

test.run();
