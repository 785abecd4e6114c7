// The seam between the Job manifest and the in-cluster entrypoint, without a cluster: what
// `job-manifest` prints is valid Kubernetes YAML naming the Job after the same tag `tag` computes, and
// the input Secret it carries, written out as the kubelet mounts it, is exactly what `job` reads.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { Secret } from 'kubernetes-models/v1/Secret';
import { parseFunction } from '../../lib/function/parse.ts';
import { BuilderError } from '../../lib/errors.ts';
import { readJobInputs } from '../../cli/mounted-inputs.ts';

const CLI = resolve(import.meta.dirname, '..', '..', 'cli', 'main.ts');
let dir: string;

// nodejs14 of the default catalog is pinned by digest: computing the tag needs no registry.
const FUNCTION = `apiVersion: kubeless.io/v1beta1
kind: Function
metadata:
  name: hello.world
  namespace: team-a
  uid: 6f1c2d3e-0000-4000-8000-000000000001
spec:
  handler: handler.hello
  runtime: nodejs14
  deps: |
    {"dependencies": {"left-pad": "1.3.0"}}
  function: |
    module.exports = { hello: (event) => 'hello ' + event.data }
---
apiVersion: kubeless.io/v1beta1
kind: Function
metadata: {name: ${'long-name-'.repeat(8)}x, namespace: team-a}
spec: {handler: h.f, runtime: nodejs14, function: "module.exports = { f: () => 1 }"}
`;

test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fib-job-manifest-'));
  writeFileSync(join(dir, 'functions.yaml'), FUNCTION);
  writeFileSync(
    join(dir, 'kubeless-config.yaml'),
    'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kubeless-config, namespace: kubeless}\ndata:\n  builder-image: registry.example.com/fib:1\n  builder-image-secret: fib-pull\n  function-registry-tls-verify: "false"\n',
  );
  writeFileSync(join(dir, 'docker-config.json'), '{"auths":{}}');
});

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env: { ...process.env, DOCKER_CONFIG: dir }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolveRun({ code: code ?? -1, stdout, stderr }));
  });
}

test('job-manifest prints a valid input Secret and Job per Function, named after the tag that `tag` computes', async () => {
  const run = await cli(['job-manifest', 'functions.yaml', '--kubeless-config', 'kubeless-config.yaml', '--registry', 'registry.example.com/functions', '--docker-config', 'docker-config.json']);
  assert.is(run.code, 0, run.stderr);
  const documents = parseAllDocuments(run.stdout).map((d) => d.toJS());
  assert.equal(documents.map((d) => d.kind), ['Secret', 'Job', 'Secret', 'Job']);
  const tags = await cli(['tag', 'functions.yaml', '--docker-config', 'docker-config.json', '--json']);
  assert.is(tags.code, 0, tags.stderr);
  const expected = JSON.parse(tags.stdout) as { function: string; tag: string }[];
  for (const [index, { tag }] of expected.entries()) {
    const input = documents[index * 2];
    const job = documents[index * 2 + 1];
    new Secret(input).validate();
    new Job(job).validate();
    assert.is(job.metadata.annotations['function-image-builder.io/tag'], tag);
    assert.ok(job.metadata.name.endsWith(`-${tag.slice(0, 10)}`) && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(job.metadata.name) && job.metadata.name.length <= 63, job.metadata.name);
    assert.is(input.metadata.name, job.metadata.name);
    assert.is(job.metadata.namespace, 'team-a');
    assert.is(job.spec.template.spec.containers[0].image, 'registry.example.com/fib:1');
    assert.equal(job.spec.template.spec.imagePullSecrets, [{ name: 'fib-pull' }]);
    assert.is(input.stringData['function-registry-tls-verify'], 'false');
    assert.is(input.stringData['function-registry'], 'registry.example.com/functions');
  }
  // "hello.world" has a dot: cleaned, and a hash of the real name keeps it apart from "hello-world".
  assert.match(documents[1].metadata.name, /^build-hello-world-[0-9a-f]{8}-[0-9a-f]{10}$/);
  assert.equal(documents[1].metadata.ownerReferences[0].uid, '6f1c2d3e-0000-4000-8000-000000000001');
  assert.is(documents[1].metadata.annotations['function-image-builder.io/image'], `registry.example.com/functions/hello.world:${expected[0]!.tag}`);
});

test('job-manifest --engine registry prints Jobs without the Docker socket; the one with deps installs them in init containers', async () => {
  const run = await cli(['job-manifest', 'functions.yaml', '--kubeless-config', 'kubeless-config.yaml', '--registry', 'registry.example.com/functions', '--docker-config', 'docker-config.json', '--engine', 'registry']);
  assert.is(run.code, 0, run.stderr);
  const [, withDeps, , withoutDeps] = parseAllDocuments(run.stdout).map((d) => d.toJS());
  for (const job of [withDeps, withoutDeps]) {
    new Job(job).validate();
    assert.not.ok(JSON.stringify(job).includes('docker.sock'));
    assert.equal(job.spec.template.spec.containers[0].env[0], { name: 'BUILDER_ENGINE', value: 'registry' });
  }
  const init = withDeps.spec.template.spec.initContainers;
  assert.equal(init.map((c: { name: string }) => c.name), ['deps-file', 'install']);
  assert.match(init[1].image, /kubeless\/nodejs@sha256:f3645b5e/);
  assert.equal(init[1].command.slice(-3), ['sh', '-c', '/kubeless-npm-install.sh']);
  assert.is(withoutDeps.spec.template.spec.initContainers, undefined);

  const bad = await cli(['job-manifest', 'functions.yaml', '--kubeless-config', 'kubeless-config.yaml', '--docker-config', 'docker-config.json', '--engine', 'buildkit']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, '--engine');
});

test('a --kubeless-config file is checked as readBuilderConfig checks the ConfigMap: a bad key fails naming the file and the key, and nothing is printed', async () => {
  writeFileSync(join(dir, 'bad-fast-path.yaml'), 'builder-image: registry.example.com/fib:1\nbuilder-fast-path: "maybe"\n');
  const run = await cli(['job-manifest', 'functions.yaml', '--kubeless-config', 'bad-fast-path.yaml', '--registry', 'r.example.com/x', '--docker-config', 'docker-config.json']);
  assert.is(run.code, 2, run.stderr);
  assert.match(run.stderr, 'bad-fast-path.yaml: "builder-fast-path" must be "true" or "false"', run.stderr);
  assert.is(run.stdout, '');
});

test('the printed input Secret, mounted as the kubelet mounts it, is what the job entrypoint reads', async () => {
  const run = await cli(['job-manifest', 'functions.yaml', '--builder-image', 'fib:1', '--tls-verify=false', '--registry', 'r.example.com/x', '--docker-config', 'docker-config.json']);
  assert.is(run.code, 0, run.stderr);
  const input = parseAllDocuments(run.stdout)[0]!.toJS();
  const mount = join(dir, 'mounted');
  mkdirSync(mount, { recursive: true });
  for (const [key, value] of Object.entries<string>(input.stringData)) writeFileSync(join(mount, key), value);
  const inputs = readJobInputs({ BUILDER_CONFIG_DIR: mount, BUILDER_SECRET_DIR: join(dir, 'no-secret') });
  assert.equal(parseFunction(inputs.function), parseFunction(FUNCTION.split('---')[0]!));
  assert.is(inputs.registry, 'r.example.com/x');
  assert.is(inputs.tlsVerify, false);
  assert.is(inputs.dockerConfig, undefined);
  assert.is(inputs.terminationLog, '/dev/termination-log');
  assert.is(inputs.sources.function, join(mount, 'function.json'));
});

test('environment variables win over mounted files; the secret directory takes either Secret type', () => {
  const secret = join(dir, 'secret-dockercfg');
  mkdirSync(secret, { recursive: true });
  writeFileSync(join(secret, '.dockercfg'), JSON.stringify({ 'https://index.docker.io/v1/': { auth: Buffer.from('me:pw').toString('base64') } }));
  const inputs = readJobInputs({
    BUILDER_CONFIG_DIR: join(dir, 'nothing-here'),
    BUILDER_SECRET_DIR: secret,
    BUILDER_FUNCTION: FUNCTION.split('---')[0],
    BUILDER_REGISTRY: 'docker.io/me',
    BUILDER_REGISTRY_TLS_VERIFY: 'TRUE',
    BUILDER_REGISTRY_SETTINGS: '{"docker.io": {"ca": "PEM"}}',
    BUILDER_TERMINATION_LOG: join(dir, 'term'),
  });
  assert.is(inputs.registry, 'docker.io/me');
  assert.is(inputs.tlsVerify, true);
  assert.equal(inputs.registries, { 'docker.io': { ca: 'PEM' } });
  assert.is(inputs.dockerConfig!.format, 'dockercfg');
  assert.is(inputs.dockerConfig!.entries[0]!.host, 'docker.io');
  assert.is(inputs.sources.function, 'env BUILDER_FUNCTION');
  assert.is(inputs.terminationLog, join(dir, 'term'));
});

test('missing or malformed inputs are user errors that name the file or variable', () => {
  const error = (env: Record<string, string>): BuilderError => {
    try {
      readJobInputs({ BUILDER_CONFIG_DIR: join(dir, 'empty'), BUILDER_SECRET_DIR: join(dir, 'empty'), ...env });
    } catch (e) {
      assert.instance(e, BuilderError);
      return e as BuilderError;
    }
    return assert.unreachable('accepted') as never;
  };
  const missing = error({});
  assert.is(missing.kind, 'user');
  assert.match(missing.message, `${join(dir, 'empty')}/function.json`);
  assert.match(missing.message, 'BUILDER_FUNCTION');
  const tls = error({ BUILDER_FUNCTION: 'x', BUILDER_REGISTRY_TLS_VERIFY: 'no' });
  assert.match(tls.message, 'env BUILDER_REGISTRY_TLS_VERIFY');
  const settings = error({ BUILDER_FUNCTION: 'x', BUILDER_REGISTRY_SETTINGS: '{"h": {"verify": false}}' });
  assert.is(settings.code, 'E_CONFIG_INVALID');
  assert.match(settings.message, 'unknown settings "verify"');
});

test.run();
