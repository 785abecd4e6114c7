// The registry engine end to end: nodejs and python fixture functions, with and without deps, appended
// to the runtime images through the registry API (deps installed in a container on the real Docker
// Engine), then read by `docker pull` and by skopeo (inspect, copy to an OCI layout, copy into the
// daemon), run, and called over HTTP. Plus: the same Function gives the same digest from two builds
// at different times; the image matches the Docker engine's in env, labels, user and command.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFunctionImage, type BuildFunctionOptions, type BuildLogEvent } from '../../lib/build.ts';
import { docker, exec } from '../support/docker.ts';
import { callFunctionImage } from '../support/function-container.ts';
import { callBuiltFunction, functionObject, startPipelineRig, type PipelineRig } from '../support/pipeline.ts';
import type { RegistryHandle } from '../support/registry.ts';
import { parseFunction } from '../../lib/function/parse.ts';

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'functions', 'runtimes');
const fixture = (path: string) => readFileSync(join(FIXTURES, path), 'utf8');

let rig: PipelineRig;
let target: RegistryHandle;

test.before(async () => {
  rig = await startPipelineRig('engine-registry-e2e', ['anonymous']);
  target = rig.targets.anonymous!;
});

test.after(async () => {
  await rig?.stop();
});

function options(namespace: string, extra: BuildFunctionOptions = {}): BuildFunctionOptions {
  return { registry: `${target.host}/${namespace}`, catalog: rig.catalog, dockerConfig: rig.dockerConfigJson, registries: rig.registries, engine: 'registry', networkMode: 'host', ...extra };
}

const CASES = {
  nodejs: { runtime: 'nodejs24', code: fixture('nodejs/handler.js'), codeDeps: fixture('nodejs-deps/handler.js'), deps: fixture('nodejs-deps/package.json'), handler: 'handler.text', handlerDeps: 'handler.hello' },
  python: { runtime: 'python3.11', code: fixture('python/handler.py'), codeDeps: fixture('python-deps/handler.py'), deps: fixture('python-deps/requirements.txt'), handler: 'handler.text', handlerDeps: 'handler.hello' },
} as const;

function spec(runtime: keyof typeof CASES, withDeps: boolean): Record<string, unknown> {
  const c = CASES[runtime];
  return withDeps ? { runtime: c.runtime, handler: c.handlerDeps, function: c.codeDeps, deps: c.deps } : { runtime: c.runtime, handler: c.handler, function: c.code };
}

const expected = (withDeps: boolean, body: string) => (withDeps ? `hello ${body}, from fib-greeting 1.0.0` : `got ${body.length} characters: ${body}`);

/** skopeo reads the image (inspect, copy to an OCI layout) and copies it into the daemon, where it runs. */
async function callThroughSkopeo(reference: string, body: string): Promise<string> {
  const inspected = JSON.parse(await run('skopeo', ['inspect', '--tls-verify=false', `docker://${reference}`])) as { Digest: string; Labels: Record<string, string> };
  assert.is(inspected.Digest, reference.split('@')[1]);
  const layout = mkdtempSync(join(tmpdir(), 'fib-oci-'));
  const local = `fib-skopeo-${Date.now()}-${Math.random().toString(16).slice(2, 8)}:latest`;
  try {
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${reference}`, `oci:${layout}:fn`]);
    assert.ok(existsSync(join(layout, 'index.json')), 'an OCI layout was written');
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${reference}`, `docker-daemon:${local}`]);
    return (await callFunctionImage(local, body)).text;
  } finally {
    rmSync(layout, { recursive: true, force: true });
    await exec('docker', ['rmi', local]);
  }
}

async function run(command: string, args: string[]): Promise<string> {
  const result = await exec(command, args, { timeoutMs: 120_000 });
  if (result.code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

for (const runtime of ['nodejs', 'python'] as const) {
  for (const withDeps of [false, true]) {
    test(`${runtime} ${withDeps ? 'with' : 'without'} deps: pulled by docker and by skopeo, runs and answers`, async () => {
      const name = `${runtime === 'nodejs' ? 'node' : 'py'}-${withDeps ? 'deps' : 'nodeps'}`;
      const log: BuildLogEvent[] = [];
      const result = await buildFunctionImage(parseFunction(functionObject(name, spec(runtime, withDeps))), options('reg', { log: (e) => log.push(e) }));
      assert.is(result.pushed, true);
      assert.ok(result.bytes, 'the registry engine reports bytes');
      assert.is(log.some((e) => e.event === 'install-step'), withDeps, 'an install step runs exactly when there are deps');
      const answer = await callBuiltFunction(result.reference, target, 'registry');
      assert.is(answer.status, 200, answer.text);
      assert.is(answer.text, expected(withDeps, 'registry'));
      assert.is(await callThroughSkopeo(result.reference, 'skopeo'), expected(withDeps, 'skopeo'));
    });
  }
}

test('the image has the env, labels, user, command and workdir of the Docker engine image', async () => {
  const fn = functionObject('node-parity', spec('nodejs', true));
  const viaRegistry = await buildFunctionImage(parseFunction(fn), options('parity-registry'));
  const viaDocker = await buildFunctionImage(parseFunction(fn), options('parity-docker', { engine: 'docker' }));
  assert.is(viaRegistry.tag, viaDocker.tag, 'the engine is not part of the tag');
  const config = async (reference: string) =>
    (JSON.parse(await run('skopeo', ['inspect', '--config', '--tls-verify=false', `docker://${reference}`])) as { config: Record<string, unknown> }).config;
  const a = await config(viaRegistry.reference);
  const b = await config(viaDocker.reference);
  for (const key of ['Env', 'Labels', 'User', 'Cmd', 'Entrypoint', 'WorkingDir', 'ExposedPorts']) {
    assert.equal(a[key], b[key], `config.${key}`);
  }
  // The files: the same paths, owners and modes under /kubeless.
  const listing = async (reference: string) => {
    await docker(['pull', '-q', reference]);
    try {
      return await docker(['run', '--rm', '--entrypoint', 'sh', reference, '-c', 'cd /kubeless && find . -maxdepth 2 | sort | while read f; do stat -c "%n %u:%g %a" "$f"; done']);
    } finally {
      await exec('docker', ['rmi', reference]);
    }
  };
  assert.is(await listing(viaRegistry.reference), await listing(viaDocker.reference));
});

test('a compile phase runs in a container after the install, with the deps and the code; the image holds its output', async () => {
  const catalog = structuredClone(rig.catalog);
  const node = catalog.find((r) => r.ID === 'nodejs')!.versions[0]!;
  const install = node.images.find((i) => i.phase === 'installation')!;
  node.images.push({ phase: 'compilation', image: install.image, command: 'printf %s "$KUBELESS_FUNC_NAME" > compiled-name.txt; cat node_modules/fib-greeting/package.json handler.js > compiled-from.txt' });
  const fn = functionObject('node-compiled', spec('nodejs', true));
  const log: BuildLogEvent[] = [];
  const result = await buildFunctionImage(parseFunction(fn), options('compiled', { catalog, log: (e) => log.push(e) }));
  assert.equal(log.filter((e) => e.event === 'install-step').map((e) => e.step), ['install', 'compile']);
  assert.is((await callBuiltFunction(result.reference, target, 'compiled')).text, expected(true, 'compiled'));
  await docker(['pull', '-q', result.reference]);
  try {
    const cat = (file: string) => docker(['run', '--rm', '--entrypoint', 'cat', result.reference, `/kubeless/${file}`]);
    assert.is(await cat('compiled-name.txt'), 'hello', 'KUBELESS_FUNC_NAME reached the compile command');
    const from = await cat('compiled-from.txt');
    assert.match(from, '"name": "fib-greeting"', 'the compile step saw the installed deps');
    assert.match(from, "require('fib-greeting')", 'and the code');
  } finally {
    await exec('docker', ['rmi', result.reference]);
  }
});

test('reproducible: the same Function built at two different times gives the same digest', async () => {
  const fn = functionObject('node-repro', spec('nodejs', false));
  const first = await buildFunctionImage(parseFunction(fn), options('repro-a'));
  // Past a second boundary, so a timestamp anywhere (gzip header, tar entry, config) would differ.
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  const second = await buildFunctionImage(parseFunction(fn), options('repro-b'));
  assert.is(first.cached, false);
  assert.is(second.cached, false);
  assert.is(second.digest, first.digest);
});

test('reproducible: installed deps from two copies with different file times give the same digest', async () => {
  const fn = functionObject('node-repro-dir', spec('nodejs', true));
  const copies = [mkdtempSync(join(tmpdir(), 'fib-installed-a-')), mkdtempSync(join(tmpdir(), 'fib-installed-b-'))];
  try {
    for (const [i, dir] of copies.entries()) {
      mkdirSync(join(dir, 'node_modules', 'fib-greeting'), { recursive: true });
      writeFileSync(join(dir, 'package.json'), CASES.nodejs.deps);
      writeFileSync(join(dir, 'node_modules', 'fib-greeting', 'index.js'), "module.exports = (who) => `hello ${who}, from a copied install`;\n");
      writeFileSync(join(dir, 'node_modules', 'fib-greeting', 'package.json'), '{"name":"fib-greeting","version":"1.0.0"}\n');
      // The function's own file, as the Job's source init container leaves it: not part of the deps layer.
      writeFileSync(join(dir, 'handler.js'), 'stale copy');
      const when = new Date(Date.UTC(2020 + i * 3, i, 1 + i));
      for (const path of ['package.json', 'node_modules/fib-greeting/index.js', 'node_modules/fib-greeting/package.json', 'node_modules/fib-greeting', 'node_modules', '.']) utimesSync(join(dir, path), when, when);
    }
    const noDaemon = { docker: { DOCKER_HOST: 'unix:///nonexistent/docker.sock' }, runInstall: false };
    const first = await buildFunctionImage(parseFunction(fn), options('repro-c', { ...noDaemon, installedDir: copies[0] }));
    const second = await buildFunctionImage(parseFunction(fn), options('repro-d', { ...noDaemon, installedDir: copies[1] }));
    assert.is(second.digest, first.digest);
    const answer = await callBuiltFunction(first.reference, target, 'copy');
    assert.is(answer.text, 'hello copy, from a copied install');
  } finally {
    for (const dir of copies) rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
