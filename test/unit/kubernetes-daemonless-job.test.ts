// The daemonless build Job (engine registry) without a cluster: its manifest against the Kubernetes
// OpenAPI schemas (no Docker socket in any container, the steps in order, no env value in the spec),
// the step env script run by a real sh, and the `job-sources` init container's command in process.
// test/kubernetes-jobs.test.ts runs init containers through the test API server's kubelet, and
// test/kubernetes-job-image.test.ts builds a function with deps through the whole Job.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { Secret } from 'kubernetes-models/v1/Secret';
import { main } from '../../cli/main.ts';
import { DEFAULT_JOB_SETTINGS, type BuilderConfig } from '../../lib/kubernetes/config.ts';
import { defaultRuntimeCatalog } from '../../lib/runtime/default-catalog.ts';
import { buildJobManifest } from '../../lib/kubernetes/manifest.ts';
import { stepEnvScript, type JobSteps } from '../../lib/kubernetes/job-steps.ts';
import { BuilderError } from '../../lib/errors.ts';
import { writeVolumeFiles } from '../../lib/image/volume-files.ts';
import { functionObject } from '../support/pipeline.ts';

const TAG = 'c0ffee1234567890abcdef1234567890abcdef1234567890abcdef1234567890';
const DIGEST = `sha256:${'a'.repeat(64)}`;
const INSTALL_IMAGE = `registry.example.com/kubeless/nodejs-install@${DIGEST}`;
const COMPILE_IMAGE = `registry.example.com/kubeless/go-compile@sha256:${'b'.repeat(64)}`;
const SECRET_VALUE = 'npm-token-Zq9-must-not-leak';

let dir: string;

test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'fib-daemonless-'));
});

test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function config(overrides: Partial<BuilderConfig> = {}): BuilderConfig {
  return {
    enabled: true,
    registry: '127.0.0.1:5000/functions',
    tlsVerify: true,
    catalog: defaultRuntimeCatalog(),
    registries: {},
    jobConfigText: {},
    builderImage: 'registry.example.com/function-image-builder:0.1.0',
    builderImageSecret: 'builder-pull',
    registrySecret: { name: 'kubeless-registry-credentials', namespace: 'default' },
    engine: 'registry',
    job: { ...DEFAULT_JOB_SETTINGS },
    ...overrides,
  };
}

function jobFor(steps: JobSteps | undefined, overrides: Partial<BuilderConfig> = {}) {
  const source = functionObject('hello', { handler: 'handler.hello', runtime: 'nodejs24', function: 'module.exports = {}', deps: '{}' }, { NPM_TOKEN: SECRET_VALUE });
  return buildJobManifest({ name: 'hello', namespace: 'default', tag: TAG, source, steps }, config(overrides));
}

test('engine registry: the Job validates, mounts no Docker socket anywhere, and runs deps-file, install, code, compile, then build, sharing /kubeless', () => {
  const { job, input } = jobFor({ installation: { image: INSTALL_IMAGE, command: '/kubeless-npm-install.sh' }, compilation: { image: COMPILE_IMAGE, command: 'go build -o server .' } });
  new Job(job as never).validate();
  new Secret(input as never).validate();
  const pod = job.spec!.template.spec!;
  assert.not.ok(JSON.stringify(job).includes('docker.sock'), 'no Docker socket');
  assert.ok(pod.volumes!.every((volume) => volume.hostPath === undefined), 'no hostPath volume');
  assert.equal(pod.initContainers!.map((c) => c.name), ['deps-file', 'install', 'code', 'compile']);
  const [depsFile, install, code, compile] = pod.initContainers!;
  const build = pod.containers[0]!;
  assert.equal([depsFile!.image, code!.image, build.image], Array(3).fill(config().builderImage));
  assert.equal(depsFile!.args, ['job-sources', 'deps']);
  assert.equal(code!.args, ['job-sources', 'code']);
  assert.is(install!.image, INSTALL_IMAGE);
  assert.is(compile!.image, COMPILE_IMAGE);
  assert.equal(install!.command, ['sh', '/etc/function-image-builder/steps/installation.sh', 'sh', '-c', '/kubeless-npm-install.sh']);
  assert.equal(compile!.command, ['sh', '/etc/function-image-builder/steps/compilation.sh', 'sh', '-c', 'go build -o server .']);
  // The phase images run as their own users, in /kubeless, and see neither the Secret nor the Function.
  for (const step of [install!, compile!]) {
    assert.is(step.securityContext, undefined);
    assert.is(step.workingDir, '/kubeless');
    assert.equal(step.volumeMounts!.map((m) => `${m.name}:${m.mountPath}:${m.readOnly === true}`), ['kubeless:/kubeless:false', 'build-steps:/etc/function-image-builder/steps:true']);
  }
  const kubeless = pod.volumes!.find((v) => v.name === 'kubeless');
  assert.equal(kubeless?.emptyDir, {});
  assert.is(pod.volumes!.find((v) => v.name === 'build-steps')?.emptyDir?.medium, 'Memory');
  // The builder's containers read the same inputs as the Docker-engine Job's build container.
  const inputs = jobFor(undefined, { engine: 'docker' }).job.spec!.template.spec!.containers[0]!.volumeMounts!.filter((m) => m.name !== 'docker-socket');
  for (const container of [depsFile!, code!]) {
    assert.equal(container.volumeMounts!.slice(0, inputs.length), inputs);
    assert.ok(container.volumeMounts!.some((m) => m.mountPath === '/kubeless' && !m.readOnly));
  }
  assert.equal(build.volumeMounts!.slice(0, inputs.length), inputs);
  assert.ok(build.volumeMounts!.some((m) => m.mountPath === '/kubeless' && m.readOnly));
  assert.equal(build.env, [{ name: 'BUILDER_ENGINE', value: 'registry' }, { name: 'BUILDER_INSTALLED_DIR', value: '/kubeless' }]);
  // The phase images are pulled with the registry Secret, as the base images are.
  assert.equal(pod.imagePullSecrets, [{ name: 'builder-pull' }, { name: 'kubeless-registry-credentials' }]);
  // The function's env value reaches the steps through job-sources, never through the Job's spec.
  assert.not.ok(JSON.stringify(job).includes(SECRET_VALUE));
});

test('engine registry: a failing install or compile command fails the Job at once unless the node killed it; the builder steps as the build container', () => {
  const { job } = jobFor({ installation: { image: INSTALL_IMAGE, command: 'true' }, compilation: { image: COMPILE_IMAGE, command: 'true' } });
  const rules = job.spec!.podFailurePolicy!.rules;
  const byContainer = Object.fromEntries(rules.filter((r) => r.onExitCodes).map((r) => [r.onExitCodes!.containerName, `${r.action} ${r.onExitCodes!.operator} ${r.onExitCodes!.values.join(',')}`]));
  assert.equal(byContainer, {
    build: 'FailJob In 2',
    'deps-file': 'FailJob In 2',
    code: 'FailJob In 2',
    install: 'FailJob NotIn 0,137,143',
    compile: 'FailJob NotIn 0,137,143',
  });
  // Disruptions are ignored before any exit-code rule can fail the Job.
  const ignore = rules.findIndex((r) => r.action === 'Ignore');
  assert.ok(ignore >= 0 && rules.slice(0, ignore).every((r) => r.onExitCodes?.containerName === 'build'));
});

test('engine registry, nothing to install or compile: no init containers, no socket, the build container appends', () => {
  const { job } = jobFor({});
  new Job(job as never).validate();
  const pod = job.spec!.template.spec!;
  assert.is(pod.initContainers, undefined);
  assert.not.ok(JSON.stringify(job).includes('docker.sock'));
  assert.equal(pod.containers[0]!.env, [{ name: 'BUILDER_ENGINE', value: 'registry' }]);
  assert.equal(pod.imagePullSecrets, [{ name: 'builder-pull' }]);
});

test('engine registry without the steps of the plan is refused, naming what to pass; engine docker keeps the socket', () => {
  assert.throws(() => jobFor(undefined), (error: unknown) => error instanceof BuilderError && error.code === 'E_JOB_STEPS_MISSING' && /jobSteps\(plan\)/.test(error.message));
  const { job } = jobFor(undefined, { engine: undefined });
  assert.ok(JSON.stringify(job).includes('/var/run/docker.sock'));
  assert.is(job.spec!.template.spec!.initContainers, undefined);
});

test('the step env script passes every value literally to the command, later names winning, whatever quotes, $ or line breaks it holds', () => {
  const env = {
    PLAIN: 'x',
    QUOTES: `it's "quoted" \\ back`,
    DOLLAR: '$(echo injected) $HOME `id`',
    LINES: 'one\ntwo\n',
    EMPTY: '',
    'DOT.NAME': 'kubernetes allows dots',
  };
  const script = join(dir, 'step.sh');
  writeFileSync(script, stepEnvScript('installation', { ...env, PLAIN: 'overridden', LAST: 'wins' }));
  const printed = execFileSync('sh', [script, 'env', '-0'], { env: { PATH: process.env.PATH, LAST: 'container value' } }).toString('utf8');
  const seen = Object.fromEntries(printed.split('\0').filter(Boolean).map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]));
  assert.equal({ ...seen, PATH: undefined, PWD: undefined }, { ...env, PLAIN: 'overridden', LAST: 'wins', PATH: undefined, PWD: undefined });
  assert.throws(() => stepEnvScript('installation', { 'A=B': 'x' }), (error: unknown) => error instanceof BuilderError && error.code === 'E_STEP_ENV_INVALID');
});

// ---- job-sources ----

const CATALOG = JSON.stringify([
  {
    ID: 'nodejs',
    depName: 'package.json',
    fileNameSuffix: '.js',
    versions: [
      {
        name: 'node24',
        version: '24',
        images: [
          { phase: 'installation', image: INSTALL_IMAGE, command: '/kubeless-npm-install.sh', env: { NPM_CONFIG_CACHE: '$(KUBELESS_INSTALL_VOLUME)/.npm' } },
          { phase: 'runtime', image: `registry.example.com/kubeless/nodejs@${DIGEST}` },
        ],
      },
    ],
  },
]);

function functionText(spec: Record<string, unknown>): string {
  const fn = { handler: 'handler.hello', runtime: 'nodejs24', function: 'module.exports = { hello: () => "hi" }', deps: '{"dependencies":{"left-pad":"1.3.0"}}', ...spec };
  return JSON.stringify(functionObject('hello', fn, { NPM_TOKEN: SECRET_VALUE }));
}

async function jobSources(args: string[], fn: string, extraEnv: Record<string, string> = {}): Promise<{ code: number; out: string; installDir: string; stepsDir: string; termination: string }> {
  const run = mkdtempSync(join(dir, 'run-'));
  const installDir = join(run, 'kubeless');
  const stepsDir = join(run, 'steps');
  mkdirSync(installDir);
  mkdirSync(stepsDir);
  const termination = join(run, 'termination-log');
  let out = '';
  const stdout = new PassThrough();
  stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const none = join(run, 'not-mounted');
  const code = await main(['job-sources', ...args], {
    stdin: new PassThrough(),
    stdout,
    stderr: new PassThrough(),
    env: {
      BUILDER_CONFIG_DIR: none,
      BUILDER_SECRET_DIR: none,
      BUILDER_REGISTRY: '127.0.0.1:9/functions',
      BUILDER_RUNTIME_IMAGES: CATALOG,
      BUILDER_FUNCTION: fn,
      BUILDER_INSTALLED_DIR: installDir,
      BUILDER_STEPS_DIR: stepsDir,
      BUILDER_TERMINATION_LOG: termination,
      ...extraEnv,
    },
    cwd: run,
    signal: new AbortController().signal,
  });
  return { code, out, installDir, stepsDir, termination };
}

test('job-sources deps writes only the deps file, owned by the function user, and the install step env; no env value in its log', async () => {
  const run = await jobSources(['deps'], functionText({}));
  assert.is(run.code, 0, run.out);
  assert.equal(readdirSync(run.installDir), ['package.json']);
  const deps = statSync(join(run.installDir, 'package.json'));
  assert.equal([deps.uid, deps.gid, deps.mode & 0o777], [1000, 1000, 0o644]);
  assert.is(readFileSync(join(run.installDir, 'package.json'), 'utf8'), '{"dependencies":{"left-pad":"1.3.0"}}');
  assert.equal(readdirSync(run.stepsDir), ['installation.sh']);
  const printed = execFileSync('sh', [join(run.stepsDir, 'installation.sh'), 'sh', '-c', 'echo "$NPM_TOKEN|$KUBELESS_INSTALL_VOLUME|$KUBELESS_DEPS_FILE|$NPM_CONFIG_CACHE"'], { env: { PATH: process.env.PATH } });
  assert.is(printed.toString().trim(), `${SECRET_VALUE}|/kubeless|/kubeless/package.json|/kubeless/.npm`);
  assert.not.ok(run.out.includes(SECRET_VALUE), 'the log names the env, never its values');
  const written = run.out.split('\n').filter(Boolean).map((line) => JSON.parse(line)).find((line) => line.event === 'sources-written');
  assert.equal(written.files, ['package.json']);
  assert.ok(written.steps.installation.includes('NPM_TOKEN'));
});

test('job-sources code writes the function files, owned by the function user, and replaces what the install left at their paths, never writing through a symlink', async () => {
  const run = await jobSources(['code'], functionText({}));
  assert.is(run.code, 0, run.out);
  assert.equal(readdirSync(run.installDir), ['handler.js']);
  assert.is(statSync(join(run.installDir, 'handler.js')).uid, 1000);

  // An install that left a symlink where a code file goes: the code replaces the link.
  const outside = join(dir, 'outside.js');
  writeFileSync(outside, 'untouched');
  const again = mkdtempSync(join(dir, 'symlink-'));
  execFileSync('ln', ['-s', outside, join(again, 'handler.js')]);
  writeVolumeFiles(again, [{ path: 'handler.js', type: 'file', mode: 0o644, content: Buffer.from('code'), sha256: '' }]);
  assert.is(readFileSync(outside, 'utf8'), 'untouched');
  assert.ok(lstatSync(join(again, 'handler.js')).isFile());
});

test('job-sources with a bad checksum exits 2 with the error in the termination message and writes nothing', async () => {
  const run = await jobSources(['deps'], functionText({ checksum: `sha256:${'0'.repeat(64)}` }));
  assert.is(run.code, 2, run.out);
  assert.is(JSON.parse(readFileSync(run.termination, 'utf8')).error.code, 'E_CHECKSUM_MISMATCH');
  assert.equal(readdirSync(run.installDir), []);
  assert.equal(readdirSync(run.stepsDir), []);
  assert.not.ok(existsSync(join(run.installDir, 'package.json')));
});

test('job-sources for another tag than the scheduled one (a runtime image tag moved) exits 2 with E_TAG_MISMATCH and writes nothing', async () => {
  const run = await jobSources(['deps'], functionText({}), { BUILDER_TAG: 'f'.repeat(64) });
  assert.is(run.code, 2, run.out);
  assert.is(JSON.parse(readFileSync(run.termination, 'utf8')).error.code, 'E_TAG_MISMATCH');
  assert.equal(readdirSync(run.installDir), []);
  assert.equal(readdirSync(run.stepsDir), []);
});

test('job-sources without a part, or with an unknown one, is a usage error', async () => {
  for (const args of [[], ['all']]) {
    const run = await jobSources(args, functionText({}));
    assert.is(run.code, 2);
  }
});

test.run();
