// scheduleBuild() with the registry engine's fast path, when the fast path declines (deps that were
// never installed) and a Job has to build: the Function is resolved, its url source downloaded and
// its tag asked about once for both, counted by fault proxies in front of the real source and target
// registries and by the rig's file server. The kubelet holds the Job's pod back: what the scheduler
// sent before the Job is what is measured.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_JOB_SETTINGS, type BuilderConfig } from '../../lib/kubernetes/config.ts';
import { scheduleBuild } from '../../lib/kubernetes/schedule.ts';
import { functionImageTag } from '../../lib/image/identity.ts';
import { parseDockerConfig } from '../../lib/registry/credentials.ts';
import { parseRuntimeCatalog } from '../../lib/runtime/catalog.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { startKubeApi, type KubeApi } from '../support/kube-api.ts';
import { waitFor } from '../support/net.ts';
import { functionObject, LOOPBACK_SOURCES, startPipelineRig, type PipelineRig } from '../support/pipeline.ts';

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'functions', 'runtimes');
const fixture = (path: string) => readFileSync(join(FIXTURES, path), 'utf8');
const SECRET = 'kubeless-registry-credentials';

let rig: PipelineRig;
let api: KubeApi;
/** In front of the registry holding the runtime images: the catalog names it, so each tag lookup passes here. */
let sourceProxy: FaultProxy;
/** In front of the target registry: every question about the function's tag. */
let targetProxy: FaultProxy;

test.before(async () => {
  rig = await startPipelineRig('schedule-fallback', ['anonymous']);
  sourceProxy = await startFaultProxy(rig.source.url);
  targetProxy = await startFaultProxy(rig.targets.anonymous!.url);
  api = await startKubeApi({ retryDelayMs: 50 });
  api.create('secrets', { metadata: { name: SECRET, namespace: 'default' }, type: 'kubernetes.io/dockerconfigjson', stringData: { '.dockerconfigjson': '{"auths":{}}' } });
});

test.after(async () => {
  await api?.close();
  await targetProxy?.stop();
  await sourceProxy?.stop();
  await rig?.stop();
});

/** The rig's catalog and credentials with the source registry reached through its proxy. */
function config(): BuilderConfig {
  const catalogText = JSON.stringify(rig.catalog).replaceAll(rig.source.host, sourceProxy.host);
  const auths = (JSON.parse(rig.dockerConfigJson) as { auths: Record<string, unknown> }).auths;
  const dockerConfig = parseDockerConfig(JSON.stringify({ auths: { ...auths, [sourceProxy.host]: auths[rig.source.host] } }));
  return {
    enabled: true,
    registry: `${targetProxy.host}/fallback`,
    tlsVerify: true,
    catalog: parseRuntimeCatalog(catalogText),
    registries: {},
    jobConfigText: { runtimeImages: catalogText },
    builderImage: 'fib-builder-never-started:test',
    registrySecret: { name: SECRET, namespace: 'default', dockerConfig },
    engine: 'registry',
    allowPrivateAddresses: LOOPBACK_SOURCES.allowPrivateAddresses,
    job: DEFAULT_JOB_SETTINGS,
  };
}

test('fast path declined (deps never installed): one runtime tag lookup, one download of the url source and one tag check, then the Job for that tag', async () => {
  const settings = config();
  const runtimeTag = rig.catalog.find((runtime) => runtime.ID === 'nodejs')!.versions[0]!.images.find((image) => image.phase === 'runtime')!.image.split(':').pop()!;
  const source = rig.files.put('fallback/handler.js', fixture('nodejs-deps/handler.js'));
  // No checksum: the url's bytes are part of the tag, so resolving the plan downloads them.
  const fn = functionObject('fallback', { handler: 'handler.hello', runtime: 'nodejs24', 'function-content-type': 'url', function: source, deps: fixture('nodejs-deps/package.json') });
  const tag = await functionImageTag(fn, { catalog: settings.catalog, dockerConfig: settings.registrySecret.dockerConfig, download: LOOPBACK_SOURCES });
  const downloadsBefore = rig.files.hits.get('/fallback/handler.js') ?? 0;
  const sourceBefore = sourceProxy.requests.length;
  const targetBefore = targetProxy.requests.length;

  api.holdPods(true);
  const events: Record<string, unknown>[] = [];
  const controller = new AbortController();
  const scheduled = scheduleBuild(api.kubeConfig, fn, settings, { signal: controller.signal, stallMs: 5_000, log: (event) => events.push(event) }).then(
    () => undefined,
    (error: unknown) => error,
  );
  try {
    await waitFor('the build Job', async () => api.list('jobs', 'default').some((job) => job.metadata.labels?.function === 'fallback'), 60_000);
  } finally {
    controller.abort();
    api.holdPods(false);
  }
  const ended = await scheduled;
  assert.ok(ended instanceof Error, 'the call ends with the abort, the Job never having run');

  assert.ok(events.some((event) => event.event === 'fast-path-declined'), JSON.stringify(events));
  const job = api.list('jobs', 'default').find((item) => item.metadata.labels?.function === 'fallback')!;
  assert.ok(job.metadata.name.startsWith(`build-fallback-${tag.slice(0, 10)}`), `the Job is for the tag the fast path identified: ${job.metadata.name}`);

  const lookups = sourceProxy.requests.slice(sourceBefore).filter((r) => r.path.endsWith(`/manifests/${runtimeTag}`));
  assert.is(lookups.length, 1, `the runtime image's tag was looked up once: ${lookups.map((r) => `${r.method} ${r.path}`).join(', ')}`);
  assert.is((rig.files.hits.get('/fallback/handler.js') ?? 0) - downloadsBefore, 1, 'the url source was downloaded once');
  const checks = targetProxy.requests.slice(targetBefore).filter((r) => r.path === `/v2/fallback/fallback/manifests/${tag}`);
  assert.equal(checks.map((r) => `${r.method} ${r.status}`), ['HEAD 404'], 'the tag was asked about once');
});

test.run();
