// The generated Dockerfile and context, built by the real Docker Engine (classic builder) on a
// busybox base made here: hostile values arrive intact in the install step, the image env and the
// labels; the function's env is in no image history or config; the install writes /kubeless although
// the base's belongs to root and its USER is 1000; /kubeless of the result belongs to 1000; a
// code-only change reuses the cached dependency install.
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createBuildContext } from '../../lib/image/context.ts';
import { resolveBuildPlan } from '../../lib/image/plan.ts';
import { parseRuntimeCatalog } from '../../lib/runtime/catalog.ts';
import { docker, exec, TEST_LABEL } from '../support/docker.ts';
import { BUSYBOX } from '../support/tiny-image.ts';

const id = randomBytes(6).toString('hex');
const base = `fib-fnmodel-base:${id}`;
const PLACEHOLDER = `fib-fnmodel.invalid/base@sha256:${'0'.repeat(64)}`;
const classic = { env: { ...process.env, DOCKER_BUILDKIT: '0' } };
const HOSTILE = 'x"\nRUN touch /pwned\n# \\\n$HOME $(KUBELESS_DEPS_FILE) `id` \'';
const RUNTIME_ENV = 'a" \\ $HOME ${HOME} `id` \' \\';
/** A function env value standing for a password: it reaches the install step and no image metadata. */
const SECRET = `fib-secret-${randomBytes(12).toString('hex')}`;

const images: string[] = [];
const intermediates: string[] = [];
const dirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fib-fnmodel-'));
  dirs.push(dir);
  return dir;
}

async function build(tag: string, context: Buffer): Promise<string> {
  const dir = tempDir();
  writeFileSync(join(dir, 'context.tar'), context);
  await exec('tar', ['-xf', join(dir, 'context.tar'), '-C', dir]);
  rmSync(join(dir, 'context.tar'));
  // The plan's base image is a placeholder digest; the Engine gets the local busybox base instead.
  const dockerfile = join(dir, 'Dockerfile');
  const { readFileSync } = await import('node:fs');
  writeFileSync(dockerfile, readFileSync(dockerfile, 'utf8').replaceAll(PLACEHOLDER, base));
  images.push(tag);
  const output = await docker(['build', '--force-rm', '-t', tag, dir], classic);
  intermediates.push(...[...output.matchAll(/---> ([0-9a-f]{12})\b/g)].map((m) => m[1]!));
  return output;
}

const catalog = parseRuntimeCatalog([{ ID: 'nodejs', depName: 'package.json', fileNameSuffix: '.js', versions: [{ name: 'node14', version: '14', images: [
  { phase: 'installation', image: PLACEHOLDER, command: 'env > install-env.txt; printf %s "$EVIL" > evil.txt; mkdir -p node_modules/dep && cat /proc/sys/kernel/random/uuid > node_modules/dep/index.js' },
  { phase: 'runtime', image: PLACEHOLDER, env: { NODE_PATH: '$(KUBELESS_INSTALL_VOLUME)/node_modules', EVIL_ENV: RUNTIME_ENV } }] }] }]);

function fn(code: string) {
  return {
    apiVersion: 'kubeless.io/v1beta1', kind: 'Function', metadata: { name: 'hello', namespace: 'default' },
    spec: {
      handler: 'handler.hello', runtime: 'nodejs14', function: code, deps: '{"dependencies":{}}',
      deployment: { spec: { template: { spec: { containers: [{ env: [{ name: 'EVIL', value: HOSTILE }, { name: 'NPM_REGISTRY', value: 'http://npm.test/' }, { name: 'NPM_TOKEN', value: SECRET }] }] } } } },
    },
  };
}

async function run(image: string, ...command: string[]): Promise<string> {
  return docker(['run', '--rm', '--label', `${TEST_LABEL}=fnmodel`, '--network', 'none', image, ...command]);
}

test.before(async () => {
  const dir = tempDir();
  copyFileSync(BUSYBOX, join(dir, 'busybox'));
  writeFileSync(join(dir, 'marker'), `${id}\n`);
  writeFileSync(join(dir, 'Dockerfile'), [
    'FROM scratch',
    'COPY busybox /bin/busybox',
    'COPY marker /marker',
    'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
    // An image that holds /kubeless already, owned by root, and runs as another user.
    'RUN ["/bin/busybox", "mkdir", "-m", "755", "/kubeless"]',
    `LABEL ${TEST_LABEL}=fnmodel-base`,
    // As Kubeless runtime images do.
    'USER 1000',
    '',
  ].join('\n'));
  images.push(base);
  await docker(['build', '-q', '-t', base, dir], classic);
});

test.after(async () => {
  for (const image of images.reverse()) await docker(['rmi', '--force', image]).catch(() => undefined);
  for (const layer of intermediates.reverse()) await docker(['rmi', layer]).catch(() => undefined);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

test('the Engine builds the generated context; hostile values arrive intact and inject nothing', async () => {
  const plan = await resolveBuildPlan(fn("module.exports = { hello: () => 'v1' };\n"), { catalog, labels: { 'x.test/note': 'say "hi" $USER \\' } });
  const context = await createBuildContext(plan);
  const image = `fib-fnmodel-fn:${id}-1`;
  await build(image, context.tar);

  // $(VAR) references in the function's env are expanded as Kubernetes would; all else is literal.
  assert.is(await run(image, 'cat', '/kubeless/evil.txt'), HOSTILE.replace('$(KUBELESS_DEPS_FILE)', '/kubeless/package.json'));
  const installEnv = await run(image, 'cat', '/kubeless/install-env.txt');
  for (const line of ['KUBELESS_INSTALL_VOLUME=/kubeless', 'KUBELESS_DEPS_FILE=/kubeless/package.json', 'NPM_REGISTRY=http://npm.test/', `NPM_TOKEN=${SECRET}`]) {
    assert.ok(installEnv.split('\n').includes(line), line);
  }
  assert.is((await exec('docker', ['run', '--rm', '--label', `${TEST_LABEL}=fnmodel`, '--network', 'none', image, 'ls', '/pwned'])).code === 0, false);

  const config = JSON.parse(await docker(['image', 'inspect', '--format', '{{json .Config}}', image])) as { Env: string[]; Labels: Record<string, string>; User: string };
  for (const entry of [`EVIL_ENV=${RUNTIME_ENV}`, 'NODE_PATH=/kubeless/node_modules', 'FUNC_HANDLER=hello', 'MOD_NAME=handler', 'FUNC_TIMEOUT=180',
    'FUNC_RUNTIME=nodejs14', 'FUNC_MEMORY_LIMIT=0', 'FUNC_PORT=8080', 'KUBELESS_INSTALL_VOLUME=/kubeless']) {
    assert.ok(config.Env.includes(entry), entry);
  }
  assert.not.ok(config.Env.some((entry) => entry.startsWith('EVIL=') || entry.startsWith('NPM_REGISTRY=')), 'the function env is the Deployment\'s, not the image\'s');
  assert.equal(config.Labels, {
    [TEST_LABEL]: 'fnmodel-base', // inherited from the base image
    'org.opencontainers.image.title': 'hello',
    'org.opencontainers.image.version': context.tag,
    // The plan's runtime image, which build() swaps for the local base everywhere in the Dockerfile.
    'org.opencontainers.image.base.name': base,
    'io.kubeless.function': 'hello',
    'io.kubeless.function.runtime': 'nodejs14',
    'io.kubeless.function.handler': 'handler.hello',
    'io.kubeless.function.tag': context.tag,
    'x.test/note': 'say "hi" $USER \\',
  });
  assert.is(config.User, '1000', 'USER stays as the runtime image has it');
  // Neither the image nor any stage the build left in the Engine (the deps stage's cache) names
  // the function's env in its history or config.
  for (const layer of [image, ...intermediates]) {
    const metadata = await docker(['image', 'inspect', layer]) + await docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}', layer]);
    assert.not.match(metadata, SECRET, `history or config of ${layer}`);
    assert.not.match(metadata, 'npm.test', `history or config of ${layer}`);
  }
  assert.ok(intermediates.length > 5, 'the stages were inspected');

  const owners = await run(image, 'stat', '-c', '%u:%g %a %n', '/kubeless', '/kubeless/handler.js', '/kubeless/package.json', '/kubeless/node_modules/dep/index.js');
  assert.equal(owners.trim().split('\n'), [
    '1000:1000 755 /kubeless',
    '1000:1000 644 /kubeless/handler.js',
    '1000:1000 644 /kubeless/package.json',
    '1000:1000 644 /kubeless/node_modules/dep/index.js',
  ]);
  assert.is(await run(image, 'cat', '/kubeless/handler.js'), "module.exports = { hello: () => 'v1' };\n");
});

test('a code-only change reuses the cached dependency install', async () => {
  const first = `fib-fnmodel-fn:${id}-1`;
  const installed = await run(first, 'cat', '/kubeless/node_modules/dep/index.js');
  const plan = await resolveBuildPlan(fn("module.exports = { hello: () => 'v2' };\n"), { catalog });
  const image = `fib-fnmodel-fn:${id}-2`;
  const output = await build(image, (await createBuildContext(plan)).tar);
  const runStep = output.slice(output.indexOf(' : RUN ["sh"'));
  assert.match(runStep.slice(0, runStep.indexOf('Step ', 1)), /Using cache/, 'the install step came from the cache');
  assert.is(await run(image, 'cat', '/kubeless/node_modules/dep/index.js'), installed);
  assert.is(await run(image, 'cat', '/kubeless/handler.js'), "module.exports = { hello: () => 'v2' };\n");
});

test('a compilation stage runs on the Engine with the installed deps and the code; the final image holds its output', async () => {
  const compiling = parseRuntimeCatalog([{ ID: 'go', depName: 'go.mod', fileNameSuffix: '.go', versions: [{ name: 'go1', version: '1', images: [
    { phase: 'installation', image: PLACEHOLDER, command: 'mkdir -p vendor && cat /proc/sys/kernel/random/uuid > vendor/dep.txt' },
    { phase: 'compilation', image: PLACEHOLDER, command: 'printf %s "$KUBELESS_FUNC_NAME" > compiled-name.txt; cat vendor/dep.txt handler.go > compiled-from.txt' },
    { phase: 'runtime', image: PLACEHOLDER }] }] }]);
  const compiled = {
    apiVersion: 'kubeless.io/v1beta1', kind: 'Function', metadata: { name: 'compiled', namespace: 'default' },
    spec: { handler: 'handler.Hello', runtime: 'go1', function: 'package kubeless\n', deps: 'module function\n' },
  };
  const plan = await resolveBuildPlan(compiled, { catalog: compiling });
  const context = await createBuildContext(plan);
  assert.match(context.dockerfile, / AS compile\n/);
  const image = `fib-fnmodel-fn:${id}-compiled`;
  await build(image, context.tar);
  assert.is(await run(image, 'cat', '/kubeless/compiled-name.txt'), 'Hello', 'KUBELESS_FUNC_NAME reached the compile command');
  const dep = await run(image, 'cat', '/kubeless/vendor/dep.txt');
  assert.match(dep, /^[0-9a-f-]{36}\n$/);
  assert.is(await run(image, 'cat', '/kubeless/compiled-from.txt'), `${dep}package kubeless\n`, 'the compile stage saw the deps stage\'s output and the code');
  const owners = await run(image, 'stat', '-c', '%u %n', '/kubeless', '/kubeless/compiled-name.txt');
  assert.equal(owners.trim().split('\n'), ['1000 /kubeless', '1000 /kubeless/compiled-name.txt']);
});

test.run();
