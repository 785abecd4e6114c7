// runBuildJob with the real client-node against the test API server, whose kubelet runs each Job's
// pod on the real Docker Engine. The pod here is a busybox script standing in for the builder, so the
// Job lifecycle (create, join, replace, watch failures, termination message) is tested in seconds;
// test/kubernetes-job-image.test.ts runs the real builder image through the same path (scheduleBuild).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, copyFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Job } from '@kubernetes/client-node';
import { DEFAULT_JOB_SETTINGS, type BuilderConfig } from '../../lib/kubernetes/config.ts';
import { defaultRuntimeCatalog } from '../../lib/runtime/default-catalog.ts';
import { buildJobManifest, type JobManifests } from '../../lib/kubernetes/manifest.ts';
import { BuildJobError, runBuildJob, type RunJobOptions } from '../../lib/kubernetes/jobs.ts';
import type { JobSteps } from '../../lib/kubernetes/job-steps.ts';
import { docker, TEST_LABEL } from '../support/docker.ts';
import { runsOf, startKubeApi, type KubeApi } from '../support/kube-api.ts';
import { waitFor } from '../support/net.ts';

const IMAGE = `fib-k8s-script-${randomBytes(4).toString('hex')}:test`;
/** A phase image stand-in: busybox's applets on PATH (sh, env, id), running as user 1000 like Kubeless's images. */
const STEP_IMAGE = `fib-k8s-step-${randomBytes(4).toString('hex')}:test`;
const RESULT = { image: '127.0.0.1:5000/fns/hello:abc', digest: `sha256:${'b'.repeat(64)}`, reference: `127.0.0.1:5000/fns/hello@sha256:${'b'.repeat(64)}`, cached: false };

let api: KubeApi;

test.before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fib-k8s-script-'));
  try {
    copyFileSync('/bin/busybox', join(dir, 'busybox'));
    writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT ["/bin/busybox"]\n');
    await docker(['build', '-q', '--force-rm', '--label', `${TEST_LABEL}=kubernetes-jobs`, '-t', IMAGE, dir], { env: { ...process.env, DOCKER_BUILDKIT: '0' } });
    writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nUSER 1000\n');
    await docker(['build', '-q', '--force-rm', '--label', `${TEST_LABEL}=kubernetes-jobs`, '-t', STEP_IMAGE, dir], { env: { ...process.env, DOCKER_BUILDKIT: '0' } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  api = await startKubeApi({ retryDelayMs: 50 });
  api.create('secrets', { metadata: { name: 'kubeless-registry-credentials', namespace: 'default' }, type: 'kubernetes.io/dockerconfigjson', stringData: { '.dockerconfigjson': '{"auths":{}}' } });
});

test.after(async () => {
  await api?.close();
  await docker(['rmi', '-f', IMAGE, STEP_IMAGE]).catch(() => undefined);
});

let counter = 0;

/** A build Job whose container runs `script` (busybox sh) instead of the builder. */
function manifests(script: string, options: { tag?: string; backoffLimit?: number; steps?: JobSteps } = {}): JobManifests {
  const config: BuilderConfig = {
    enabled: true,
    registry: '127.0.0.1:5000/fns',
    tlsVerify: true,
    catalog: defaultRuntimeCatalog(),
    registries: {},
    jobConfigText: {},
    builderImage: IMAGE,
    registrySecret: { name: 'kubeless-registry-credentials', namespace: 'default' },
    job: { ...DEFAULT_JOB_SETTINGS, backoffLimit: options.backoffLimit ?? 0, activeDeadlineSeconds: 60 },
    ...(options.steps ? { engine: 'registry' as const } : {}),
  };
  const tag = options.tag ?? `${(++counter).toString(16).padStart(4, '0')}${randomBytes(30).toString('hex')}`;
  const built = buildJobManifest({ name: 'hello', namespace: 'default', tag, source: { kind: 'Function', metadata: { name: 'hello' } }, steps: options.steps }, config);
  const container = built.job.spec!.template.spec!.containers[0]!;
  container.command = ['/bin/busybox', 'sh', '-c', script];
  delete container.args;
  return built;
}

const succeed = (delaySeconds = 0) =>
  `test -s /etc/function-image-builder/build/function.json || exit 9; sleep ${delaySeconds}; echo building; echo '${JSON.stringify(RESULT)}' > /dev/termination-log`;

function jobsNamed(name: string): number {
  return api.list('jobs', 'default').filter((j) => j.metadata.name === name).length;
}

function posts(path: string): number {
  return api.requests.filter((r) => r.method === 'POST' && r.path === path).length;
}

function podsOfJob(name: string): number {
  return api.list('pods', 'default').filter((p) => p.metadata.labels['job-name'] === name).length;
}

function jobDeletes(name: string): number {
  return api.requests.filter((r) => r.method === 'DELETE' && r.path === `/apis/batch/v1/namespaces/default/jobs/${name}`).length;
}

/** Runs the Job, which must fail, and returns what runBuildJob threw. */
async function jobFailure(m: JobManifests, options: RunJobOptions): Promise<BuildJobError> {
  const error = await runBuildJob(api.kubeConfig, m, options).then(
    () => assert.unreachable('the Job succeeded'),
    (error: unknown) => error,
  );
  return error as BuildJobError;
}

const isComplete = (name: string) => async () => api.get('jobs', 'default', name)?.status?.conditions?.some((c: { type: string }) => c.type === 'Complete') === true;

test('a fresh Job runs to completion; its result comes from the termination message; the input Secret is owned by the Job', async () => {
  const m = manifests(succeed());
  const outcome = await runBuildJob(api.kubeConfig, m, { stallMs: 5_000 });
  assert.equal(outcome.result, RESULT);
  assert.is(outcome.created, true);
  assert.is(outcome.job, m.job.metadata!.name);
  const job = api.get('jobs', 'default', outcome.job)!;
  const input = api.get('secrets', 'default', outcome.job)!;
  assert.equal(input.metadata.ownerReferences.map((o: { uid: string }) => o.uid), [job.metadata.uid]);
  assert.is(jobsNamed(outcome.job), 1);
});

test('two concurrent calls for one tag create one Job and both get its result', async () => {
  const m = manifests(succeed(1));
  const before = posts('/apis/batch/v1/namespaces/default/jobs');
  const [a, b] = await Promise.all([runBuildJob(api.kubeConfig, m, { stallMs: 5_000 }), runBuildJob(api.kubeConfig, structuredClone(m), { stallMs: 5_000 })]);
  assert.equal(a.result, RESULT);
  assert.equal(b.result, RESULT);
  assert.equal([a.created, b.created].sort(), [false, true]);
  // Both tried to create; the API server let one through.
  assert.is(posts('/apis/batch/v1/namespaces/default/jobs') - before, 2);
  assert.is(api.list('pods', 'default').filter((p) => p.metadata.labels['job-name'] === a.job).length, 1);
});

test('a build that fails with the user-error exit code fails the Job at once, with its reason, message and log tail', async () => {
  const failure = JSON.stringify({ error: { code: 'E_FUNCTION_INVALID', kind: 'user', message: 'function default/hello: spec.handler must be <module>.<function>' } });
  const m = manifests(`echo step one; echo "handler is bad" >&2; echo '${failure}' > /dev/termination-log; exit 2`, { backoffLimit: 3 });
  const e = await jobFailure(m, { stallMs: 5_000 });
  assert.instance(e, BuildJobError);
  assert.is(e.kind, 'user');
  assert.is(e.details.reason, 'PodFailurePolicy');
  assert.is(e.details.code, 'E_FUNCTION_INVALID');
  assert.is(e.details.exitCode, 2);
  assert.is(e.details.attempts, 1, 'a user error is not retried');
  assert.match(e.message, 'spec.handler must be <module>.<function>');
  assert.match(String(e.details.logTail), 'handler is bad');
});

test('a Job that failed for good is replaced on the next call, which then succeeds', async () => {
  const failing = manifests('echo "registry unreachable" >&2; exit 3', { backoffLimit: 1 });
  const e = await jobFailure(failing, { stallMs: 5_000 });
  assert.is(e.code, 'E_BUILD_JOB_FAILED');
  assert.is(e.kind, 'infrastructure');
  assert.is(e.details.reason, 'BackoffLimitExceeded');
  assert.is(e.details.attempts, 2, 'an infrastructure failure is retried up to backoffLimit');
  // No termination message: the kubelet falls back to the end of the log.
  assert.match(e.message, 'registry unreachable');
  const firstUid = api.get('jobs', 'default', failing.job.metadata!.name!)!.metadata.uid;
  const retry = manifests(succeed(), { tag: failing.job.metadata!.annotations!['function-image-builder.io/tag'] });
  const outcome = await runBuildJob(api.kubeConfig, retry, { stallMs: 5_000 });
  assert.equal(outcome.result, RESULT);
  assert.is(outcome.created, true);
  const job = api.get('jobs', 'default', outcome.job)!;
  assert.is.not(job.metadata.uid, firstUid);
  const deletes = api.requests.filter((r) => r.method === 'DELETE' && r.path.endsWith(`/jobs/${outcome.job}`));
  assert.is(deletes.length, 1);
  assert.match(deletes[0]!.query, 'propagationPolicy=Background');
  // The new Job's input Secret survived the garbage collection of the old Job's dependents.
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(api.get('secrets', 'default', outcome.job)?.metadata.ownerReferences.map((o: { uid: string }) => o.uid), [job.metadata.uid]);
});

test('a Complete Job whose image the registry no longer has is run again, not trusted', async () => {
  const m = manifests(succeed());
  const first = await runBuildJob(api.kubeConfig, m, { stallMs: 5_000 });
  const firstUid = api.get('jobs', 'default', first.job)!.metadata.uid;
  const second = await runBuildJob(api.kubeConfig, structuredClone(m), { stallMs: 5_000, imageExists: async () => false });
  assert.is(second.created, true);
  assert.is.not(api.get('jobs', 'default', second.job)!.metadata.uid, firstUid);
  assert.equal(second.result, RESULT);
  assert.is(podsOfJob(second.job), 1, 'the old pod went with the old Job');
});

test('a call that starts after the Job completed joins it, while the first caller still waits on it: one Job, one pod, one result', async () => {
  const m = manifests(succeed());
  const name = m.job.metadata!.name!;
  const checked: unknown[] = [];
  // The first caller's watch goes silent, so it is still waiting when the Job completes.
  api.holdPods(true);
  const first = whileRunning(
    m,
    () => {
      api.stallWatches(true);
      api.holdPods(false);
    },
    { stallMs: 2_000 },
  );
  let second;
  try {
    await waitFor('the Job to complete', isComplete(name));
    second = await runBuildJob(api.kubeConfig, structuredClone(m), {
      stallMs: 2_000,
      imageExists: async (result) => {
        checked.push(result);
        return result.digest === RESULT.digest;
      },
    });
  } finally {
    api.stallWatches(false);
    api.holdPods(false);
  }
  const a = await first;
  assert.equal(checked, [RESULT], 'the registry was asked about the digest the Job reported');
  assert.equal(second.result, RESULT);
  assert.equal(a.result, RESULT);
  assert.is(a.created, true);
  assert.is(second.created, false);
  assert.is(jobDeletes(name), 0);
  assert.is(podsOfJob(name), 1);
});

test('a Job whose input Secret was never written (its creator died in between) is repaired by the next call, long before its deadline', async () => {
  const m = manifests(succeed());
  const job = api.create('jobs', structuredClone(m.job));
  assert.is(api.get('secrets', 'default', job.metadata.name), undefined);
  const started = Date.now();
  const outcome = await runBuildJob(api.kubeConfig, m, { stallMs: 5_000, signal: AbortSignal.timeout(20_000) });
  assert.equal(outcome.result, RESULT);
  assert.is(outcome.created, false);
  assert.ok(Date.now() - started < 20_000, 'the deadline is 60 s away');
  assert.equal(api.get('secrets', 'default', job.metadata.name)?.metadata.ownerReferences.map((o: { uid: string }) => o.uid), [job.metadata.uid]);
  assert.is(podsOfJob(job.metadata.name), 1);
});

test('a Job whose input Secret cannot be written is deleted again, so it holds nothing until its deadline', async () => {
  const m = manifests(succeed());
  const name = m.job.metadata!.name!;
  m.input.metadata!.name = ''; // the API server refuses it (422)
  try {
    await runBuildJob(api.kubeConfig, m, { stallMs: 5_000 });
    assert.unreachable('the Job ran without its input');
  } catch (error) {
    assert.match((error as Error).message, `Secret default/${name}`);
  }
  assert.is(jobDeletes(name), 1);
  assert.is(api.get('jobs', 'default', name), undefined);
});

test('a builder image that cannot be pulled fails fast, naming the image, and the Job is removed', async () => {
  const m = manifests(succeed());
  m.job.spec!.template.spec!.containers[0]!.image = 'fib-no-such-builder-image:1';
  const started = Date.now();
  const e = await jobFailure(m, { stallMs: 500 });
  assert.is(e.code, 'E_BUILD_JOB_FAILED');
  assert.is(e.details.reason, 'ImagePullBackOff');
  assert.match(e.message, 'fib-no-such-builder-image:1');
  assert.match(e.message, 'builder-image');
  assert.ok(Date.now() - started < 10_000, 'long before the deadline');
  await waitFor('the stuck Job to be deleted', async () => api.get('jobs', 'default', m.job.metadata!.name!) === undefined);
});

/**
 * A daemonless Job (engine registry) whose builder containers run busybox scripts: `deps-file` writes
 * the deps file and the install step's env script as job-sources would, then the manifest's own
 * install container runs `command` in STEP_IMAGE, then the build container runs `build`.
 */
function daemonlessManifests(command: string, build: string, options: { backoffLimit?: number; installImage?: string } = {}): JobManifests {
  const m = manifests(build, { backoffLimit: options.backoffLimit, steps: { installation: { image: options.installImage ?? STEP_IMAGE, command } } });
  const depsFile = m.job.spec!.template.spec!.initContainers!.find((c) => c.name === 'deps-file')!;
  depsFile.command = ['/bin/busybox', 'sh', '-c', `echo 'deps-v1' > /kubeless/package.json && echo 'exec env -- STEP_TOKEN=t0ken "$@"' > /etc/function-image-builder/steps/installation.sh`];
  delete depsFile.args;
  return m;
}

test('a daemonless Job runs its init containers in order, sharing /kubeless; the install step runs as its image user, in /kubeless, with its env script; no container gets the Docker socket', async () => {
  const install = 'cat package.json > installed && id -u > user && pwd > dir && echo "$STEP_TOKEN" > token';
  // The build container (plain busybox, no applets on PATH) reports what the install left, as its result.
  const report = `cd /kubeless && b=/bin/busybox && $b printf '{"image":"%s:%s:%s:%s","digest":"${RESULT.digest}","reference":"r","cached":false}' "$($b cat installed)" "$($b cat user)" "$($b cat dir)" "$($b cat token)" > /dev/termination-log`;
  const m = daemonlessManifests(install, report);
  const outcome = await runBuildJob(api.kubeConfig, m, { stallMs: 5_000 });
  assert.is(outcome.result.image, 'deps-v1:1000:/kubeless:t0ken');
  const runs = runsOf(api, outcome.job);
  assert.equal(runs.map((run) => run.container), ['deps-file', 'install', 'build']);
  assert.is(runs[1]!.image, STEP_IMAGE);
  assert.ok(runs.every((run) => !run.args.some((arg) => arg.includes('docker.sock'))), 'no Docker socket mounted');
});

test('a daemonless Job whose install command fails fails at once, naming the step, its command, exit code and output; the build container never runs', async () => {
  const m = daemonlessManifests('echo "npm ERR! 404 left-pad@9.9.9 not found" >&2; exit 1', succeed(), { backoffLimit: 3 });
  const e = await jobFailure(m, { stallMs: 5_000 });
  assert.instance(e, BuildJobError);
  assert.is(e.kind, 'user');
  assert.is(e.details.reason, 'PodFailurePolicy');
  assert.is(e.details.container, 'install');
  assert.is(e.details.exitCode, 1);
  assert.is(e.details.attempts, 1, 'a failing install is not retried');
  assert.match(e.message, 'the installation step (echo "npm ERR!');
  assert.match(e.message, 'exited with code 1');
  assert.match(e.message, 'left-pad@9.9.9 not found');
  assert.match(String(e.details.logTail), 'left-pad@9.9.9 not found');
  const runs = runsOf(api, m.job.metadata!.name!);
  assert.equal(runs.map((run) => run.container), ['deps-file', 'install']);
});

test('a daemonless Job whose installation image cannot be pulled fails fast, naming the image and the runtime catalog', async () => {
  const m = daemonlessManifests('true', succeed(), { installImage: 'fib-no-such-install-image@sha256:' + 'c'.repeat(64) });
  const e = await jobFailure(m, { stallMs: 500 });
  assert.is(e.details.reason, 'ImagePullBackOff');
  assert.is(e.details.container, 'install');
  assert.match(e.message, 'the installation image fib-no-such-install-image@sha256:');
  assert.match(e.message, 'runtime-images');
  await waitFor('the stuck Job to be deleted', async () => api.get('jobs', 'default', m.job.metadata!.name!) === undefined);
});

async function whileRunning(m: JobManifests, during: () => void, options: RunJobOptions = {}) {
  const name = m.job.metadata!.name!;
  const running = runBuildJob(api.kubeConfig, m, { stallMs: 5_000, signal: AbortSignal.timeout(20_000), ...options });
  await waitFor('a watch on the running Job', async () => api.get('jobs', 'default', name) !== undefined && api.openWatches() > 0, 10_000);
  during();
  return running;
}

function watches(name: string): number {
  return api.requests.filter((r) => r.method === 'GET' && r.path === '/apis/batch/v1/namespaces/default/jobs' && r.query.includes('watch=true') && r.query.includes(name)).length;
}

test('a watch that drops mid-build is resumed from its resourceVersion', async () => {
  const m = manifests(succeed(2));
  const outcome = await whileRunning(m, () => api.dropWatches());
  assert.equal(outcome.result, RESULT);
  assert.ok(watches(outcome.job) >= 2, `watches: ${watches(outcome.job)}`);
});

/** The Job's list and watch requests, in order. */
function listsAndWatches(name: string): string[] {
  return api.requests
    .filter((r) => r.method === 'GET' && r.path === '/apis/batch/v1/namespaces/default/jobs' && r.query.includes(name))
    .map((r) => (r.query.includes('watch=true') ? 'watch' : 'list'));
}

test('410 Gone on the resumed watch leads to a fresh list, and the result still arrives', async () => {
  const m = manifests(succeed(2));
  const outcome = await whileRunning(m, () => {
    api.compact();
    api.expireNextWatch();
    api.dropWatches();
  });
  assert.equal(outcome.result, RESULT);
  const sequence = listsAndWatches(outcome.job);
  // drop → list → watch (410) → list → watch: a re-watch from the expired resourceVersion never works.
  assert.ok(sequence.filter((kind) => kind === 'watch').length >= 3, sequence.join(' '));
  assert.not.match(sequence.join(' '), 'watch watch');
});

test('a watch that stays open but goes silent is replaced after stallMs', async () => {
  const m = manifests(succeed(1));
  const events: Record<string, unknown>[] = [];
  const started = Date.now();
  try {
    const outcome = await whileRunning(m, () => api.stallWatches(true), { stallMs: 1_500, log: (event) => events.push(event), signal: AbortSignal.timeout(15_000) });
    assert.equal(outcome.result, RESULT);
  } finally {
    api.stallWatches(false);
  }
  assert.ok(events.some((e) => e.event === 'job-watch-restart' && e.why === 'stalled'), JSON.stringify(events));
  assert.ok(Date.now() - started < 15_000);
});

test('a Job of another tag under the same name is not joined', async () => {
  const m = manifests(succeed(1));
  const other = structuredClone(m);
  (other.job as V1Job).metadata!.annotations!['function-image-builder.io/tag'] = 'f'.repeat(64);
  const first = runBuildJob(api.kubeConfig, m, { stallMs: 5_000 });
  await waitFor('the first Job', async () => api.get('jobs', 'default', m.job.metadata!.name!) !== undefined);
  try {
    await runBuildJob(api.kubeConfig, other, { stallMs: 5_000 });
    assert.unreachable('joined');
  } catch (error) {
    assert.is((error as BuildJobError).code, 'E_JOB_CONFLICT');
  }
  assert.equal((await first).result, RESULT);
});

test.run();
