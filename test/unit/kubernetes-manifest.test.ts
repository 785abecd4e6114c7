// Build Jobs, their input Secrets and Deployment patches, checked against the Kubernetes OpenAPI schemas
// (kubernetes-models) and against the name rules the API server enforces beyond the schemas.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { DEFAULT_JOB_SETTINGS, type BuilderConfig } from '../../lib/kubernetes/config.ts';
import { defaultRuntimeCatalog } from '../../lib/runtime/default-catalog.ts';
import { buildJobManifest } from '../../lib/kubernetes/manifest.ts';
import { functionDeploymentPatch } from '../../lib/kubernetes/deployment.ts';
import { parseRegistrySettings } from '../../lib/kubernetes/registry-settings.ts';
import { BuilderError } from '../../lib/errors.ts';

// The rules of k8s.io/apimachinery validation, written out here independently of lib/kubernetes/names.ts.
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const CONFIG_MAP_KEY = /^[-._a-zA-Z0-9]+$/;

const TAG = 'c0ffee1234567890abcdef1234567890abcdef1234567890abcdef1234567890';

function config(overrides: Partial<BuilderConfig> = {}): BuilderConfig {
  return {
    enabled: true,
    registry: '127.0.0.1:5000/functions',
    tlsVerify: false,
    catalog: defaultRuntimeCatalog(),
    registries: { '127.0.0.1:5000': { tlsVerify: false } },
    // Passed on verbatim: the manifest never parses it.
    jobConfigText: { runtimeImages: '[{"ID":"nodejs"}]' },
    builderImage: 'registry.example.com/function-image-builder:0.1.0',
    builderImageSecret: 'builder-pull',
    registrySecret: { name: 'kubeless-registry-credentials', namespace: 'default' },
    job: { ...DEFAULT_JOB_SETTINGS },
    ...overrides,
  };
}

function fn(name: string, extra: { uid?: string; namespace?: string; source?: string | object } = {}) {
  const namespace = extra.namespace ?? 'default';
  return {
    name,
    namespace,
    uid: extra.uid,
    tag: TAG,
    image: `127.0.0.1:5000/functions/${name.toLowerCase()}:${TAG}`,
    source: extra.source ?? { apiVersion: 'kubeless.io/v1beta1', kind: 'Function', metadata: { name, namespace }, spec: { handler: 'h.f', runtime: 'nodejs24', function: 'x' } },
  };
}

const NAMES = [
  'hello',
  'a',
  '0',
  'x'.repeat(46), // the longest name that fits `build-<name>-<tag10>` unchanged
  'x'.repeat(47),
  'y'.repeat(63),
  'z'.repeat(64),
  `${'segment.'.repeat(31)}end`, // a 253-character DNS subdomain
  'my.function',
  'my-function',
  'My_Function',
  '--dashes--',
  'ünïcödé',
  '1.2.3',
  '...',
  'a'.repeat(45) + '.b',
];

test('Jobs and their input Secrets validate and have valid names and labels, for names of every length and odd characters', () => {
  const seen = new Map<string, string>();
  for (const name of NAMES) {
    const { job, input } = buildJobManifest(fn(name, { uid: 'f00d-uid' }), config());
    new Job(job as never).validate();
    new Secret(input as never).validate();
    const jobName = job.metadata!.name!;
    assert.ok(DNS1123_LABEL.test(jobName) && jobName.length <= 63, `job name ${jobName} for ${JSON.stringify(name)}`);
    assert.ok(jobName.startsWith('build-') && jobName.endsWith(`-${TAG.slice(0, 10)}`), jobName);
    assert.is(seen.get(jobName), undefined, `${JSON.stringify(name)} and ${JSON.stringify(seen.get(jobName))} got the same Job name`);
    seen.set(jobName, name);
    assert.is(input.metadata!.name, jobName);
    for (const labels of [job.metadata!.labels!, job.spec!.template.metadata!.labels!, input.metadata!.labels!]) {
      assert.is(labels['created-by'], 'kubeless');
      for (const value of Object.values(labels)) assert.ok(LABEL_VALUE.test(value) && value.length <= 63, `label value ${value}`);
    }
    for (const key of Object.keys(input.stringData!)) assert.ok(CONFIG_MAP_KEY.test(key), key);
  }
});

test('a Kubeless-style name is kept exactly: build-<function>-<tag[0:10]>, function label = name', () => {
  const { job } = buildJobManifest(fn('hello'), config());
  assert.is(job.metadata!.name, `build-hello-${TAG.slice(0, 10)}`);
  assert.equal(job.metadata!.labels, { 'created-by': 'kubeless', function: 'hello' });
  assert.is(job.metadata!.annotations!['function-image-builder.io/tag'], TAG);
});

test("the scheduler's tag reaches the Job in its build inputs (the Job builds that tag or fails)", () => {
  const { input } = buildJobManifest(fn('hello'), config());
  assert.is(input.stringData!.tag, TAG);
});

test('the Job fails fast on the user-error exit code, retries infrastructure failures, and is bounded in time', () => {
  const { job } = buildJobManifest(fn('hello'), config());
  const spec = job.spec!;
  const pod = spec.template.spec!;
  assert.is(pod.restartPolicy, 'Never');
  const failJob = spec.podFailurePolicy!.rules.find((rule) => rule.action === 'FailJob')!;
  assert.equal(failJob.onExitCodes, { containerName: 'build', operator: 'In', values: [2] });
  assert.is(pod.containers[0]!.name, 'build');
  assert.ok(spec.backoffLimit! >= 1);
  assert.ok(spec.activeDeadlineSeconds! > 0 && spec.ttlSecondsAfterFinished! > 0);
  assert.is(pod.containers[0]!.terminationMessagePolicy, 'FallbackToLogsOnError');
  assert.is(pod.containers[0]!.terminationMessagePath, '/dev/termination-log');
  assert.ok(pod.containers[0]!.resources!.limits!.memory && pod.containers[0]!.resources!.requests!.cpu);
});

test('the pod mounts the build input Secret, the registry Secret and the Docker socket', () => {
  const { job, input } = buildJobManifest(fn('hello'), config({ job: { ...DEFAULT_JOB_SETTINGS, dockerSocket: '/run/docker.sock' } }));
  const pod = job.spec!.template.spec!;
  const volumes = Object.fromEntries(pod.volumes!.map((v) => [v.name, v]));
  assert.is(volumes['build-config']!.secret!.secretName, input.metadata!.name);
  assert.is(volumes['build-config']!.secret!.defaultMode, 0o400);
  assert.is(volumes['registry-secret']!.secret!.secretName, 'kubeless-registry-credentials');
  assert.equal(volumes['docker-socket']!.hostPath, { path: '/run/docker.sock', type: 'Socket' });
  const mounts = Object.fromEntries(pod.containers[0]!.volumeMounts!.map((m) => [m.name, m.mountPath]));
  assert.equal(mounts, {
    'build-config': '/etc/function-image-builder/build',
    'registry-secret': '/etc/function-image-builder/registry-secret',
    'docker-socket': '/var/run/docker.sock',
  });
  assert.equal(pod.imagePullSecrets, [{ name: 'builder-pull' }]);
  assert.is(pod.containers[0]!.image, 'registry.example.com/function-image-builder:0.1.0');
  assert.equal(pod.containers[0]!.args, ['job']);
  // The input mirrors kubeless-config's keys and carries the Function itself.
  assert.is(input.stringData!['function-registry-tls-verify'], 'false');
  assert.is(input.stringData!['function-registry'], '127.0.0.1:5000/functions');
  assert.is(input.stringData!['runtime-images'], '[{"ID":"nodejs"}]');
  assert.is(JSON.parse(input.stringData!['function.json']!).metadata.name, 'hello');
});

test('owned by the Function when its uid is known and it lives in the Job namespace; no pull secret when none is set', () => {
  const owned = buildJobManifest(fn('hello', { uid: 'abc-123' }), config()).job;
  assert.equal(owned.metadata!.ownerReferences, [
    { apiVersion: 'kubeless.io/v1beta1', kind: 'Function', name: 'hello', uid: 'abc-123', controller: true, blockOwnerDeletion: false },
  ]);
  assert.is(buildJobManifest(fn('hello'), config()).job.metadata!.ownerReferences, undefined);
  // The Secret lives elsewhere: the Job runs there, and cannot be owned across namespaces.
  const elsewhere = buildJobManifest(fn('hello', { uid: 'abc-123', namespace: 'team-a' }), config({ registrySecret: { name: 'creds', namespace: 'builds' } })).job;
  assert.is(elsewhere.metadata!.namespace, 'builds');
  assert.is(elsewhere.metadata!.ownerReferences, undefined);
  const noPull = buildJobManifest(fn('hello'), config({ builderImageSecret: undefined })).job;
  assert.is(noPull.spec!.template.spec!.imagePullSecrets, undefined);
  new Job(noPull as never).validate();
});

test('the Function, env values included, travels in a Secret: no ConfigMap in the manifests', () => {
  const password = 'fib-manifest-password-5d1f';
  const source = { apiVersion: 'kubeless.io/v1beta1', kind: 'Function', metadata: { name: 'env', namespace: 'default' }, spec: { handler: 'h.f', runtime: 'nodejs24', function: 'x',
    deployment: { spec: { template: { spec: { containers: [{ env: [{ name: 'DB_PASSWORD', value: password }] }] } } } } } };
  const manifests = buildJobManifest(fn('env', { source }), config());
  assert.is(manifests.input.kind, 'Secret');
  assert.match(manifests.input.stringData!['function.json']!, password, 'the Job still gets the whole Function');
  assert.not.match(JSON.stringify(manifests.job), password);
  assert.not.match(JSON.stringify(manifests), /"kind":"ConfigMap"|"configMap"/);
});

test('a Function too large for a Secret is refused with a user error naming it', () => {
  try {
    buildJobManifest(fn('big', { source: 'x'.repeat(1024 * 1024 + 1) }), config());
    assert.unreachable('accepted');
  } catch (error) {
    assert.instance(error, BuilderError);
    assert.is((error as BuilderError).code, 'E_FUNCTION_TOO_LARGE');
    assert.is((error as BuilderError).kind, 'user');
    assert.match((error as Error).message, 'default/big');
  }
});

// Applies a strategic-merge patch the way the API server merges containers: by name.
function applyPatch(base: any, patch: any): any {
  const out = structuredClone(base);
  const target = out.spec.template.spec;
  const from = patch.spec.template.spec;
  for (const container of from.containers) {
    const existing = target.containers.find((c: any) => c.name === container.name);
    if (existing) Object.assign(existing, container);
    else target.containers.push(container);
  }
  for (const field of ['initContainers', 'imagePullSecrets', 'volumes']) {
    if (from[field]) target[field] = [...(target[field] ?? []), ...from[field]];
  }
  return out;
}

function baseDeployment(name: string): any {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'default', labels: { function: name, 'created-by': 'kubeless' } },
    spec: {
      selector: { matchLabels: { function: name } },
      template: {
        metadata: { labels: { function: name } },
        spec: { containers: [{ name, image: 'kubeless/nodejs:old', ports: [{ containerPort: 8080 }] }] },
      },
    },
  };
}

test('the Deployment patch pins the image by digest and validates once applied, for every name; a name that is no container name asks for containerName', () => {
  const digest = `sha256:${'a'.repeat(64)}`;
  for (const name of NAMES) {
    const image = `127.0.0.1:5000/functions/${name.toLowerCase()}:${TAG}`;
    const reference = `127.0.0.1:5000/functions/${name.toLowerCase()}@${digest}`;
    const result = { function: `default/${name}`, image, digest, reference };
    const options = { imagePullSecret: 'kubeless-registry-credentials' };
    let containerName = name;
    if (!(DNS1123_LABEL.test(name) && name.length <= 63)) {
      try {
        functionDeploymentPatch(result, options);
        assert.unreachable(`a container named ${JSON.stringify(name)}`);
      } catch (error) {
        assert.instance(error, BuilderError, name);
        assert.is((error as BuilderError).code, 'E_PATCH_INVALID', name);
        assert.match((error as Error).message, 'give containerName', name);
        assert.match((error as Error).message, JSON.stringify(name), name);
      }
      containerName = 'function';
    }
    // The container is named after the function, as scheduleBuild's result says it, unless given.
    const patch = functionDeploymentPatch(result, containerName === name ? options : { ...options, containerName });
    const applied = applyPatch(baseDeployment(containerName), patch);
    new Deployment(applied).validate();
    const container = applied.spec.template.spec.containers[0];
    assert.is(applied.spec.template.spec.containers.length, 1, name);
    assert.is(container.name, containerName);
    assert.ok(DNS1123_LABEL.test(container.name) && container.name.length <= 63, container.name);
    assert.is(container.image, reference);
    assert.equal(container.ports, [{ containerPort: 8080 }]);
    assert.equal(applied.spec.template.spec.imagePullSecrets, [{ name: 'kubeless-registry-credentials' }]);
    assert.is(applied.spec.template.spec.initContainers, undefined);
  }
  assert.throws(() => functionDeploymentPatch({ image: 'x/y:1' }, { containerName: 'Bad_Name' }), (error: Error) => /containerName gives the container name "Bad_Name"/.test(error.message));
});

test('with wait, the patch adds an init container that waits for the tagged image with the registry secret', () => {
  const image = `127.0.0.1:5000/functions/hello:${TAG}`;
  const patch = functionDeploymentPatch(
    { image },
    { containerName: 'hello', wait: { builderImage: 'fib:1', registrySecret: 'kubeless-registry-credentials', tlsVerify: false, timeoutSeconds: 900 } },
  );
  const applied = applyPatch(baseDeployment('hello'), patch);
  new Deployment(applied).validate();
  const spec = applied.spec.template.spec;
  assert.is(spec.containers[0].image, image);
  const init = spec.initContainers[0];
  assert.equal(init.args, ['wait', image, '--timeout', '900', '--tls-verify=false']);
  assert.is(init.image, 'fib:1');
  assert.equal(init.volumeMounts, [{ name: 'wait-registry-secret', mountPath: '/etc/function-image-builder/registry-secret', readOnly: true }]);
  assert.equal(spec.volumes, [{ name: 'wait-registry-secret', secret: { secretName: 'kubeless-registry-credentials', defaultMode: 0o400 } }]);
  assert.is(init.env, undefined);
});

test("with wait and registry settings, the init container gets them as the JSON the wait command reads", () => {
  const image = `registry.internal:5000/functions/hello:${TAG}`;
  const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  const settings = { 'registry.internal:5000': { ca: Buffer.from(ca) }, 'plain.internal': { insecure: true } };
  const patch = functionDeploymentPatch({ image }, { containerName: 'hello', wait: { builderImage: 'fib:1', registrySettings: settings } });
  const applied = applyPatch(baseDeployment('hello'), patch);
  new Deployment(applied).validate();
  const env = applied.spec.template.spec.initContainers[0].env;
  assert.equal(env.map((e: { name: string }) => e.name), ['BUILDER_REGISTRY_SETTINGS']);
  assert.equal(parseRegistrySettings(env[0].value, 'BUILDER_REGISTRY_SETTINGS'), { 'registry.internal:5000': { ca }, 'plain.internal': { insecure: true } });
});

test.run();
