// The Job image of Dockerfile.builder, built here on the rig's offline Node image, run two ways:
//  - exactly as a kubelet runs the build Job's pod (docker run with the Docker socket, the registry
//    Secret and the build input Secret mounted where the manifest says, host network only to reach the
//    rig's loopback registry): a working function image is pushed and the termination message written;
//    a bad Function exits 2, an unreachable registry 3; a TLS registry whose CA the Job does not have
//    is used with function-registry-tls-verify "false", and refused without it;
//  - through scheduleBuild() with the real client-node against the test API server, whose kubelet runs
//    the same image: cache hit, fresh build, concurrent calls, a failure surfaced and then replaced,
//    a watch dropped (then 410 Gone) while the build container runs, its outcome held back until the
//    client has listed and watched the Job again;
//  - with builder-engine registry: the daemonless Job (init containers install the deps in the
//    installation image, no Docker socket in any container) and the controller's fast path (a
//    code-only change or a function without deps published in-process, no Job; with it off, a Job).
// And the image itself: its entrypoint, and production dependencies only.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_JOB_SETTINGS, type BuilderConfig } from '../../lib/kubernetes/config.ts';
import { buildJobManifest } from '../../lib/kubernetes/manifest.ts';
import { BuildJobError } from '../../lib/kubernetes/jobs.ts';
import { functionDeploymentPatch } from '../../lib/kubernetes/deployment.ts';
import { scheduleBuild } from '../../lib/kubernetes/schedule.ts';
import { BuilderError } from '../../lib/errors.ts';
import { functionImageTag } from '../../lib/image/identity.ts';
import { parseReference } from '../../lib/image/reference.ts';
import { RegistryClient } from '../../lib/registry/client.ts';
import { parseDockerConfig } from '../../lib/registry/credentials.ts';
import { parseRuntimeCatalog } from '../../lib/runtime/catalog.ts';
import { buildBuilderImage, type BuilderImage } from '../support/builder-image.ts';
import { exec, TEST_LABEL } from '../support/docker.ts';
import { runsOf, startKubeApi, type KubeApi } from '../support/kube-api.ts';
import { waitFor } from '../support/net.ts';
import { callBuiltFunction, functionObject, startPipelineRig, type PipelineRig } from '../support/pipeline.ts';
import { startRegistry } from '../support/registry.ts';

const HANDLER = readFileSync(join(import.meta.dirname, '..', '..', 'fixtures', 'functions', 'runtimes', 'nodejs', 'handler.js'), 'utf8');
const SECRET = 'kubeless-registry-credentials';

let rig: PipelineRig;
let builder: BuilderImage;
let api: KubeApi;
const temps: string[] = [];
/** What the first test pushed. */
let pushed: { image: string; reference: string } | undefined;

test.before(async () => {
  const [started, built] = await Promise.allSettled([startPipelineRig('k8s-job', ['basic', 'tls']), buildBuilderImage()]);
  if (started.status === 'fulfilled') rig = started.value;
  if (built.status === 'fulfilled') builder = built.value;
  if (started.status === 'rejected') throw started.reason;
  if (built.status === 'rejected') throw built.reason;
  api = await startKubeApi({ retryDelayMs: 100 });
  api.create('secrets', { metadata: { name: SECRET, namespace: 'default' }, type: 'kubernetes.io/dockerconfigjson', stringData: { '.dockerconfigjson': rig.dockerConfigJson } });
});

test.after(async () => {
  await api?.close();
  await builder?.remove();
  await rig?.stop();
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

function config(overrides: Partial<BuilderConfig> = {}): BuilderConfig {
  return {
    enabled: true,
    registry: `${rig.source.host}/functions`,
    tlsVerify: true,
    ...catalogSettings(rig.catalog),
    registries: {},
    builderImage: builder.image,
    registrySecret: { name: SECRET, namespace: 'default', dockerConfig: parseDockerConfig(rig.dockerConfigJson) },
    job: { ...DEFAULT_JOB_SETTINGS, backoffLimit: 1, activeDeadlineSeconds: 300 },
    ...overrides,
  };
}

/** A catalog as readBuilderConfig gives it: parsed for the scheduler, its text for the Job's ConfigMap. */
function catalogSettings(catalog: unknown): Pick<BuilderConfig, 'catalog' | 'jobConfigText'> {
  const text = JSON.stringify(catalog);
  return { catalog: parseRuntimeCatalog(text), jobConfigText: { runtimeImages: text } };
}

function textFunction(name: string): Record<string, unknown> {
  return functionObject(name, { handler: 'handler.text', runtime: 'nodejs24', function: HANDLER });
}

/** The tag scheduleBuild would hand to the Job. A Function that does not parse fails in the Job before its tag matters. */
async function scheduledTag(fn: Record<string, unknown> | string, settings: BuilderConfig): Promise<string> {
  try {
    return await functionImageTag(fn, { catalog: settings.catalog, dockerConfig: settings.registrySecret.dockerConfig });
  } catch (error) {
    if (error instanceof BuilderError && error.kind === 'user') return '0'.repeat(64);
    throw error;
  }
}

/** Copies a manifest and its blobs (mounted) from one repository of the rig's source registry to another. */
async function copyImage(client: RegistryClient, from: string, fromRef: string, to: string, toTag: string): Promise<string> {
  const manifest = await client.getManifest(from, fromRef);
  const json = manifest.json as { config: { digest: string }; layers: { digest: string }[] };
  for (const digest of [json.config.digest, ...json.layers.map((layer) => layer.digest)]) {
    const mounted = await client.mountBlob(to, digest, from);
    assert.ok(mounted.mounted, `blob ${digest} mounted`);
  }
  return (await client.putManifest(to, toTag, manifest.bytes, manifest.mediaType)).digest;
}

interface PodRun {
  code: number;
  log: Record<string, any>[];
  raw: string;
  termination: any;
}

/**
 * Runs the builder image as the kubelet runs the Job's pod: each volumeMount of the manifest backed by
 * a temp dir holding the Secret's keys, or by the hostPath itself.
 */
async function runLikeKubelet(fn: Record<string, unknown> | string, options: { config?: BuilderConfig; secret?: string } = {}): Promise<PodRun> {
  const settings = options.config ?? config();
  const tag = await scheduledTag(fn, settings);
  const { job, input } = buildJobManifest({ name: 'direct', namespace: 'default', source: fn, tag }, settings);
  const pod = job.spec!.template.spec!;
  const container = pod.containers[0]!;
  const dir = mkdtempSync(join(tmpdir(), 'fib-k8s-pod-'));
  temps.push(dir);
  const sources = new Map<string, string>();
  for (const volume of pod.volumes!) {
    const path = join(dir, volume.name);
    if (volume.secret?.secretName === input.metadata!.name) {
      mkdirSync(path);
      for (const [key, value] of Object.entries(input.stringData!)) writeFileSync(join(path, key), value, { mode: volume.secret!.defaultMode });
      sources.set(volume.name, path);
    } else if (volume.secret) {
      mkdirSync(path);
      writeFileSync(join(path, '.dockerconfigjson'), options.secret ?? rig.dockerConfigJson, { mode: 0o400 });
      sources.set(volume.name, path);
    } else if (volume.hostPath) {
      sources.set(volume.name, volume.hostPath.path);
    }
  }
  const termination = join(dir, 'termination-log');
  writeFileSync(termination, '', { mode: 0o666 });
  const name = `fib-k8s-pod-${randomBytes(4).toString('hex')}`;
  const args = ['run', '--name', name, '--label', `${TEST_LABEL}=k8s-pod`, '--network', 'host'];
  for (const mount of container.volumeMounts!) args.push('-v', `${sources.get(mount.name)}:${mount.mountPath}${mount.readOnly ? ':ro' : ''}`);
  args.push('-v', `${termination}:${container.terminationMessagePath}`, container.image!, ...(container.args ?? []));
  try {
    const result = await exec('docker', args, { timeoutMs: 300_000 });
    const lines = result.stdout.split('\n').filter(Boolean);
    const log = lines.map((line) => {
      try {
        return JSON.parse(line) as Record<string, any>;
      } catch {
        throw new Error(`not a JSON log line: ${line}\n${result.stderr}`);
      }
    });
    const text = readFileSync(termination, 'utf8');
    return { code: result.code, log, raw: result.stdout + result.stderr, termination: text ? JSON.parse(text) : undefined };
  } finally {
    await exec('docker', ['rm', '-f', name]);
  }
}

test('the image runs the CLI: entrypoint node dist/cli/main.js, default command job; the commands not run elsewhere load', async () => {
  const inspected = await exec('docker', ['image', 'inspect', '-f', '{{json .Config.Entrypoint}} {{json .Config.Cmd}}', builder.image]);
  assert.is(inspected.code, 0, inspected.stderr);
  assert.is(inspected.stdout.trim(), '["node","/opt/function-image-builder/dist/cli/main.js"] ["job"]');
  for (const command of ['job-manifest', 'tag', 'build']) {
    const help = await exec('docker', ['run', '--rm', '--label', `${TEST_LABEL}=k8s-help`, builder.image, command, '--help']);
    assert.is(help.code, 0, `${command}: ${help.stderr}`);
    assert.match(help.stdout, `usage: function-image-builder ${command}`);
  }
});

test('the image holds the production dependencies only', async () => {
  const root = join(import.meta.dirname, '..', '..');
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  // A development dependency that a production one also needs (@types/node) is not dev in the lock.
  const devOnly = Object.keys(pkg.devDependencies).filter((name) => lock.packages[`node_modules/${name}`]?.dev === true);
  assert.ok(['typescript', 'uvu', 'kubernetes-models'].every((name) => devOnly.includes(name)), devOnly.join(' '));
  // From the application directory, as the CLI's own imports resolve; a types-only package has no
  // entry point to resolve, so its directory counts too.
  const script = `const want = ${JSON.stringify({ prod: Object.keys(pkg.dependencies), dev: devOnly })};
const has = (name) => {
  if (require('node:fs').existsSync('node_modules/' + name + '/package.json')) return true;
  try { require.resolve(name, { paths: [process.cwd()] }); return true; } catch (error) { return error.code !== 'MODULE_NOT_FOUND'; }
};
console.log(JSON.stringify({ missing: want.prod.filter((name) => !has(name)), present: want.dev.filter(has) }));`;
  const run = await exec('docker', ['run', '--rm', '--label', `${TEST_LABEL}=k8s-deps`, '--entrypoint', 'node', builder.image, '-e', script]);
  assert.is(run.code, 0, run.stderr);
  assert.equal(JSON.parse(run.stdout), { missing: [], present: [] });
});

test('the Job image builds and pushes a working function image and writes the termination message', async () => {
  const run = await runLikeKubelet(textFunction('k8s-direct'));
  assert.is(run.code, 0, run.raw);
  const result = run.termination;
  assert.equal(Object.keys(result).sort(), ['cached', 'digest', 'image', 'reference']);
  assert.is(result.cached, false);
  assert.match(result.image, new RegExp(`^${rig.source.host}/functions/k8s-direct:[0-9a-f]{64}$`));
  assert.is(result.reference, `${rig.source.host}/functions/k8s-direct@${result.digest}`);
  // One JSON object per line, the credential key named, the password nowhere.
  for (const line of run.log) assert.ok(line.time && line.level && line.event, JSON.stringify(line));
  assert.ok(run.log.some((line) => line.event === 'credentials' && line.key === rig.source.host), 'the credential key is logged');
  assert.ok(run.log.some((line) => line.event === 'result' && line.reference === result.reference));
  assert.not.match(run.raw, rig.source.password!);
  pushed = { image: result.image, reference: result.reference };
  const answer = await callBuiltFunction(result.reference, rig.source, 'abc');
  assert.is(answer.status, 200, answer.text);
  assert.is(answer.text, 'got 3 characters: abc');
});

test("the Deployment patch's wait init container, run from the Job image, finds the pushed image", async () => {
  assert.ok(pushed, 'the first test pushed an image');
  const patch = functionDeploymentPatch({ function: 'default/k8s-direct', image: pushed!.image }, { wait: { builderImage: builder.image, registrySecret: SECRET, timeoutSeconds: 30 } });
  const run = await runWaitContainer(patch);
  assert.is(run.code, 0, run.output);
  const found = run.log.find((line) => line.event === 'image-found');
  assert.is(`${pushed!.image.split(':').slice(0, -1).join(':')}@${found.digest}`, pushed!.reference);
});

/** Runs the patch's wait init container as a kubelet would: its env, args and the registry Secret mounted. */
async function runWaitContainer(patch: ReturnType<typeof functionDeploymentPatch>) {
  const init = patch.spec!.template.spec!.initContainers![0]!;
  const secret = mkdtempSync(join(tmpdir(), 'fib-k8s-wait-'));
  temps.push(secret);
  writeFileSync(join(secret, '.dockerconfigjson'), rig.dockerConfigJson);
  const name = `fib-k8s-wait-${randomBytes(4).toString('hex')}`;
  const env = (init.env ?? []).flatMap((e) => ['-e', `${e.name}=${e.value}`]);
  try {
    const mount = init.volumeMounts![0]!;
    const result = await exec('docker', ['run', '--name', name, '--label', `${TEST_LABEL}=k8s-wait`, '--network', 'host', ...env, '-v', `${secret}:${mount.mountPath}:ro`, init.image!, ...init.args!], { timeoutMs: 60_000 });
    const log = result.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line));
    return { code: result.code, log, output: result.stdout + result.stderr };
  } finally {
    await exec('docker', ['rm', '-f', name]);
  }
}

test('a bad Function exits with the user-error code and says why in the termination message', async () => {
  const fn = functionObject('k8s-bad', { handler: 'no-dot-here', runtime: 'nodejs24', function: HANDLER });
  const run = await runLikeKubelet(fn);
  assert.is(run.code, 2, run.raw);
  assert.is(run.termination.error.code, 'E_FUNCTION_INVALID');
  assert.is(run.termination.error.kind, 'user');
  assert.match(run.termination.error.message, 'spec.handler');
});

test('an unreachable registry exits with the infrastructure code', async () => {
  const stopped = await startRegistry('anonymous');
  await stopped.stop();
  const run = await runLikeKubelet(textFunction('k8s-down'), { config: config({ registry: `${stopped.host}/functions` }) });
  assert.is(run.code, 3, run.raw);
  assert.is(run.termination.error.kind, 'infrastructure');
  assert.match(run.termination.error.code, /^E_REGISTRY_(UNREACHABLE|UNAVAILABLE|TIMEOUT)$/);
  assert.match(run.termination.error.message, stopped.host);
});

/** What the TLS test pushed. */
let tlsPushed: { image: string; digest: string; reference: string } | undefined;
// As readBuilderConfig makes it: the flag is applied to the target registry in `registries`, and passed on to the Job.
const tlsConfig = (tlsVerify: boolean) => config({ registry: `${rig.targets.tls!.host}/functions`, tlsVerify, registries: tlsVerify ? {} : { [rig.targets.tls!.host]: { tlsVerify: false } } });

test('function-registry-tls-verify "false": the Job pushes to a TLS registry whose CA it lacks; without it the build is refused', async () => {
  const tls = rig.targets.tls!;
  const fn = textFunction('k8s-tls');
  const verifying = await runLikeKubelet(fn, { config: tlsConfig(true) });
  assert.is(verifying.code, 2, verifying.raw);
  assert.is(verifying.termination.error.code, 'E_REGISTRY_TLS');
  assert.match(verifying.termination.error.message, tls.host);
  const run = await runLikeKubelet(fn, { config: tlsConfig(false) });
  assert.is(run.code, 0, run.raw);
  assert.ok(run.log.some((line) => line.event === 'inputs' && line.tlsVerify === false && line.sources.tlsVerify.endsWith('/function-registry-tls-verify')), 'read from the mounted input Secret');
  assert.match(run.termination.image, `${tls.host}/functions/k8s-tls:`);
  assert.is(run.termination.cached, false);
  tlsPushed = run.termination;
  // The Engine trusts the rig's CA (certs.d): the pushed image runs.
  assert.is((await callBuiltFunction(run.termination.reference, tls, 'tls')).text, 'got 3 characters: tls');
});

test("the wait init container checks a registry with a private CA through the patch's registry settings", async () => {
  assert.ok(tlsPushed, 'the TLS test pushed an image');
  const tls = rig.targets.tls!;
  const wait = { builderImage: builder.image, registrySecret: SECRET, timeoutSeconds: 30 };
  const withCa = await runWaitContainer(functionDeploymentPatch({ function: 'default/k8s-tls', image: tlsPushed!.image }, { wait: { ...wait, registrySettings: { [tls.host]: { ca: tls.caPem! } } } }));
  assert.is(withCa.code, 0, withCa.output);
  assert.is(withCa.log.find((line) => line.event === 'image-found')?.digest, tlsPushed!.digest);
  const without = await runWaitContainer(functionDeploymentPatch({ function: 'default/k8s-tls', image: tlsPushed!.image }, { wait }));
  assert.is(without.code, 2, without.output);
  assert.match(without.output, 'E_REGISTRY_TLS');
});

const jobPosts = () => api.requests.filter((r) => r.method === 'POST' && r.path === '/apis/batch/v1/namespaces/default/jobs').length;

test('scheduleBuild: an image that exists is returned at once, and no Job is created', async () => {
  const before = jobPosts();
  const result = await scheduleBuild(api.kubeConfig, textFunction('k8s-direct'), config());
  assert.is(result.cached, true);
  assert.is(result.created, false);
  assert.is(result.job, undefined);
  assert.is(result.reference, `${rig.source.host}/functions/k8s-direct@${result.digest}`);
  assert.is(jobPosts(), before);
});

test('scheduleBuild: the cache-hit check honours tls-verify "false", and fails with E_REGISTRY_TLS without it', async () => {
  assert.ok(tlsPushed, 'the TLS test pushed an image');
  const before = jobPosts();
  const hit = await scheduleBuild(api.kubeConfig, textFunction('k8s-tls'), tlsConfig(false));
  assert.is(hit.cached, true);
  assert.is(hit.digest, tlsPushed!.digest);
  try {
    await scheduleBuild(api.kubeConfig, textFunction('k8s-tls'), tlsConfig(true));
    assert.unreachable('the certificate was accepted without the CA');
  } catch (error) {
    assert.is((error as BuildJobError).code, 'E_REGISTRY_TLS');
  }
  assert.is(jobPosts(), before);
});

test('scheduleBuild: a fresh build runs a Job and returns the pushed digest; the next call is a cache hit', async () => {
  const fn = textFunction('k8s-fresh');
  const result = await scheduleBuild(api.kubeConfig, fn, config(), { stallMs: 10_000 });
  assert.is(result.cached, false);
  assert.is(result.created, true);
  assert.match(result.job!, /^build-k8s-fresh-[0-9a-f]{10}$/);
  assert.is(result.job, `build-k8s-fresh-${result.tag.slice(0, 10)}`);
  const job = api.get('jobs', 'default', result.job!)!;
  assert.ok(job.status.conditions.some((c: { type: string; status: string }) => c.type === 'Complete' && c.status === 'True'));
  const answer = await callBuiltFunction(result.reference, rig.source, 'abcd');
  assert.is(answer.text, 'got 4 characters: abcd');
  const before = jobPosts();
  const again = await scheduleBuild(api.kubeConfig, fn, config());
  assert.is(again.cached, true);
  assert.is(again.reference, result.reference);
  assert.is(jobPosts(), before);
});

test('scheduleBuild: a runtime tag moved between scheduling and the Job start fails the Job with E_TAG_MISMATCH; nothing is pushed', async () => {
  // The nodejs runtime phase by a tag of this test's own, first on the real runtime image.
  const catalog = structuredClone(rig.catalog);
  const version = catalog.find((runtime) => runtime.ID === 'nodejs')!.versions[0]!;
  const runtimePhase = version.images.find((image) => image.phase === 'runtime')!;
  const installPhase = version.images.find((image) => image.phase === 'installation')!;
  const runtimeRef = parseReference(runtimePhase.image);
  const installRef = parseReference(installPhase.image);
  const moving = 'fib-moving/nodejs';
  const client = new RegistryClient({ registry: rig.source.host, credentials: parseDockerConfig(rig.dockerConfigJson) });
  const fn = functionObject('k8s-moved', { handler: 'handler.text', runtime: `nodejs${version.version}`, function: HANDLER });
  try {
    const first = await copyImage(client, runtimeRef.repository, runtimeRef.tag!, moving, 'current');
    runtimePhase.image = `${rig.source.host}/${moving}:current`;
    api.holdPods(true);
    const scheduled = scheduleBuild(api.kubeConfig, fn, config(catalogSettings(catalog)), { stallMs: 10_000 });
    scheduled.catch(() => undefined);
    await waitFor('the Job of k8s-moved', async () => api.list('jobs', 'default').some((job) => job.metadata.name.startsWith('build-k8s-moved-')));
    // The tag moves to another image before the Job's pod starts.
    const second = await copyImage(client, installRef.repository, installRef.digest!, moving, 'current');
    assert.is.not(second, first);
    api.holdPods(false);
    try {
      await scheduled;
      assert.unreachable('the Job built a tag nobody waits for');
    } catch (error) {
      assert.instance(error, BuildJobError);
      const e = error as BuildJobError;
      assert.is(e.details.code, 'E_TAG_MISMATCH');
      assert.is(e.details.exitCode, 2);
      assert.match(e.message, 'schedule the build again');
    }
    assert.equal(await client.listTags('functions/k8s-moved').catch(() => []), [], 'nothing was pushed');
  } finally {
    api.holdPods(false);
  }
});

test('scheduleBuild: two concurrent calls for one tag share one Job', async () => {
  const fn = textFunction('k8s-twice');
  const [a, b] = await Promise.all([scheduleBuild(api.kubeConfig, fn, config(), { stallMs: 10_000 }), scheduleBuild(api.kubeConfig, fn, config(), { stallMs: 10_000 })]);
  assert.is(a.reference, b.reference);
  assert.equal([a.created, b.created].sort(), [false, true]);
  assert.is(api.list('jobs', 'default').filter((j) => j.metadata.name === a.job).length, 1);
  assert.is(api.list('pods', 'default').filter((p) => p.metadata.labels['job-name'] === a.job).length, 1);
});

test('scheduleBuild: a failing build surfaces its reason; after the fix the failed Job is replaced', async () => {
  const wrong = JSON.stringify({ auths: { [rig.source.host]: { auth: Buffer.from(`${rig.source.username}:wrong-${randomBytes(4).toString('hex')}`).toString('base64') } } });
  api.create('secrets', { metadata: { name: 'fixable', namespace: 'default' }, type: 'kubernetes.io/dockerconfigjson', stringData: { '.dockerconfigjson': wrong } });
  // The controller's copy of the credentials is right; the Secret the Job mounts is not.
  const fixable = config({ registrySecret: { name: 'fixable', namespace: 'default', dockerConfig: parseDockerConfig(rig.dockerConfigJson) } });
  const fn = textFunction('k8s-retry');
  let failedUid: string | undefined;
  try {
    await scheduleBuild(api.kubeConfig, fn, fixable, { stallMs: 10_000 });
    assert.unreachable('the build succeeded with wrong credentials');
  } catch (error) {
    assert.instance(error, BuildJobError);
    const e = error as BuildJobError;
    assert.is(e.kind, 'user');
    assert.is(e.details.reason, 'PodFailurePolicy');
    assert.is(e.details.exitCode, 2);
    assert.match(String(e.details.code), /^E_REGISTRY_(UNAUTHORIZED|DENIED)$/);
    assert.match(e.message, rig.source.host, 'the message names the registry');
    assert.ok(typeof e.details.logTail === 'string' && (e.details.logTail as string).includes('"event":"failed"'));
    assert.not.match(JSON.stringify({ message: e.message, details: e.details }), rig.source.password!);
    failedUid = api.get('jobs', 'default', e.details.job as string)!.metadata.uid;
  }
  api.replace('secrets', { metadata: { name: 'fixable', namespace: 'default' }, stringData: { '.dockerconfigjson': rig.dockerConfigJson } });
  const result = await scheduleBuild(api.kubeConfig, fn, fixable, { stallMs: 10_000 });
  assert.is(result.created, true);
  assert.is.not(api.get('jobs', 'default', result.job!)!.metadata.uid, failedUid);
  assert.ok(api.requests.some((r) => r.method === 'DELETE' && r.path.endsWith(`/jobs/${result.job}`) && r.query.includes('propagationPolicy=Background')));
  assert.is((await callBuiltFunction(result.reference, rig.source, 'xy')).text, 'got 2 characters: xy');
});

test('scheduleBuild: a watch that drops mid-build (and then 410 Gone) still ends with the result', async () => {
  const fn = textFunction('k8s-drop');
  // The build container runs, but its outcome is published only once the watch is back: the client
  // can learn it only through the watch it re-established after the drop and the 410.
  api.holdCompletion(true);
  let result;
  try {
    const running = scheduleBuild(api.kubeConfig, fn, config(), { stallMs: 10_000 });
    let settled = false;
    void running.then(
      () => (settled = true),
      () => (settled = true),
    );
    const job = () => api.list('jobs', 'default').find((j) => j.metadata.name.startsWith('build-k8s-drop-'));
    const pod = () => api.list('pods', 'default').find((p) => p.metadata.labels['job-name'] === job()?.metadata.name);
    await waitFor('the build container to run, and a watch on its Job', async () => pod()?.status?.phase === 'Running' && api.openWatches() > 0, 60_000);
    const name: string = job()!.metadata.name;
    const requests = (kind: 'list' | 'watch') =>
      api.requests.filter((r) => r.method === 'GET' && r.path === '/apis/batch/v1/namespaces/default/jobs' && r.query.includes(name) && r.query.includes('watch=true') === (kind === 'watch')).length;
    const [lists, watches] = [requests('list'), requests('watch')];
    api.compact();
    api.expireNextWatch();
    api.dropWatches();
    // drop → list → watch (410) → list → watch
    await waitFor('the Job to be listed and watched again after the drop and the 410', async () => requests('list') >= lists + 2 && requests('watch') >= watches + 2 && api.openWatches() > 0, 60_000);
    assert.is(pod()?.status?.phase, 'Running', 'the build has not finished yet');
    assert.not.ok(settled, 'scheduleBuild returned before the build finished');
    api.holdCompletion(false);
    result = await running;
  } finally {
    api.holdCompletion(false);
  }
  assert.is(result.cached, false);
  assert.is(result.created, true);
  assert.ok(api.get('jobs', 'default', result.job!)!.status.conditions.some((c: { type: string; status: string }) => c.type === 'Complete' && c.status === 'True'));
  assert.is((await callBuiltFunction(result.reference, rig.source, 'mid')).text, 'got 3 characters: mid');
});

// ---- engine registry: the daemonless Job and the controller's fast path ----

const DEPS_HANDLER = readFileSync(join(import.meta.dirname, '..', '..', 'fixtures', 'functions', 'runtimes', 'nodejs-deps', 'handler.js'), 'utf8');
const DEPS_FILE = readFileSync(join(import.meta.dirname, '..', '..', 'fixtures', 'functions', 'runtimes', 'nodejs-deps', 'package.json'), 'utf8');
const GREETING = (who: string) => `hello ${who}, from fib-greeting 1.0.0`;
const DAEMONLESS = 'k8s-daemonless';

function depsFunction(code: string): Record<string, unknown> {
  return functionObject(DAEMONLESS, { handler: 'handler.hello', runtime: 'nodejs24', function: code, deps: DEPS_FILE });
}

test('engine registry: a function with deps is built by the daemonless Job (deps file, install in the installation image as its own user, append), no container gets a Docker socket; the image runs and answers', async () => {
  const events: Record<string, unknown>[] = [];
  const result = await scheduleBuild(api.kubeConfig, depsFunction(DEPS_HANDLER), config({ engine: 'registry' }), { stallMs: 10_000, log: (event) => events.push(event) });
  assert.is(result.cached, false);
  assert.is(result.created, true);
  // The fast path was tried first and declined: the deps had never been installed.
  assert.ok(events.some((event) => event.event === 'fast-path-declined'), JSON.stringify(events));
  const runs = runsOf(api, result.job!);
  assert.equal(runs.map((run) => run.container), ['deps-file', 'install', 'build']);
  const installImage = rig.catalog.find((runtime) => runtime.ID === 'nodejs')!.versions[0]!.images.find((image) => image.phase === 'installation')!.image;
  assert.is(runs[1]!.image, installImage);
  assert.not.ok(runs[1]!.args.includes('--user'), 'the installation image runs as its own user');
  for (const run of runs) assert.not.ok(run.args.some((arg) => arg.includes('docker.sock')), `${run.container} got the Docker socket: ${run.args.join(' ')}`);
  const pod = api.get('jobs', 'default', result.job!)!.spec.template.spec;
  assert.not.ok(JSON.stringify(pod).includes('docker.sock'));
  assert.is((await callBuiltFunction(result.reference, rig.source, 'daemonless')).text, GREETING('daemonless'));
});

test('engine registry fast path: a code-only change of a function whose deps are installed is published in-process, with no Job', async () => {
  const before = jobPosts();
  const code = DEPS_HANDLER.replace('return greet(event.data);', 'return greet(event.data) + "!";');
  const result = await scheduleBuild(api.kubeConfig, depsFunction(code), config({ engine: 'registry' }));
  assert.is(jobPosts(), before, 'no Job was created');
  assert.is(result.job, undefined);
  assert.is(result.created, false);
  assert.is(result.cached, false);
  assert.is((await callBuiltFunction(result.reference, rig.source, 'fast')).text, `${GREETING('fast')}!`);
});

test('engine registry fast path: a function without deps is appended in-process, with no Job', async () => {
  const before = jobPosts();
  const result = await scheduleBuild(api.kubeConfig, functionObject('k8s-nodeps-fast', { handler: 'handler.text', runtime: 'nodejs24', function: HANDLER }), config({ engine: 'registry' }));
  assert.is(jobPosts(), before, 'no Job was created');
  assert.is(result.job, undefined);
  assert.is((await callBuiltFunction(result.reference, rig.source, 'xyz')).text, 'got 3 characters: xyz');
});

test('engine registry with the fast path off (builder-fast-path "false"): the same kind of code-only change goes through a Job', async () => {
  const before = jobPosts();
  const code = DEPS_HANDLER.replace('return greet(event.data);', 'return greet(event.data) + "?";');
  const result = await scheduleBuild(api.kubeConfig, depsFunction(code), config({ engine: 'registry', fastPath: false }), { stallMs: 10_000 });
  assert.is(jobPosts(), before + 1, 'a Job was created');
  assert.is(result.created, true);
  assert.match(result.job!, /^build-k8s-daemonless-/);
  assert.is((await callBuiltFunction(result.reference, rig.source, 'job')).text, `${GREETING('job')}?`);
});

test.run();
