// Infrastructure faults, against a Docker daemon of this file's own (frozen, killed, restarted)
// and a real registry (killed, answering 500): each call ends in a typed infrastructure error
// (exit 3 through the CLI) by its time limit, and leaves no container, no local tag or
// repo@digest reference, no temp file and no tag in the registry; a rerun succeeds.
// Stalling registries (existence check, blob upload) are in build-failures.test.ts.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildFunctionImage, type BuildFunctionOptions, type BuildResult } from '../../lib/build.ts';
import { BuilderError } from '../../lib/errors.ts';
import { TEST_LABEL } from '../support/docker.ts';
import { contextTar } from '../support/engine-images.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import { RIG_TEMP_PREFIX } from '../support/leftovers.ts';
import { waitFor } from '../support/net.ts';
import { functionObject, registryTags } from '../support/pipeline.ts';
import { startOwnDockerd, type OwnDockerd } from '../support/own-dockerd.ts';
import { startRegistry, type RegistryHandle } from '../support/registry.ts';
import { parseFunction } from '../../lib/function/parse.ts';

const CLI = join(import.meta.dirname, '..', '..', 'cli', 'main.ts');
const STARTED = 'fault-install-started';

let daemon: OwnDockerd;
let registry: RegistryHandle;
let catalog: unknown[];
let work: string;

test.before(async () => {
  work = mkdtempSync(join(tmpdir(), `${RIG_TEMP_PREFIX}faults-`));
  registry = await startRegistry('anonymous');
  daemon = await startOwnDockerd();
  // A busybox installation and runtime image, made in the daemon from local files and pushed, so the
  // catalog pins it by digest. Deps that say "slow" make the install step run until stopped.
  const base = `${registry.host}/fib-faults/base:1`;
  const dockerfile = ['FROM scratch', 'COPY busybox /bin/busybox', 'RUN ["/bin/busybox", "--install", "-s", "/bin"]', `LABEL ${TEST_LABEL}=faults`, 'USER 1000', ''].join('\n');
  await daemon.docker(['build', '-q', '-t', base, '-'], { input: await contextTar({ Dockerfile: dockerfile }, { busybox: true }) });
  const digest = /digest: (sha256:[0-9a-f]{64})/.exec(await daemon.docker(['push', base]))?.[1];
  if (!digest) throw new Error('no digest from the base image push');
  const pinned = `${registry.host}/fib-faults/base@${digest}`;
  const install = `case "$(cat "$KUBELESS_DEPS_FILE")" in slow*) echo ${STARTED}; sleep 600;; esac; echo installed > installed.txt`;
  catalog = [{ ID: 'fault', depName: 'deps.txt', fileNameSuffix: '.sh', versions: [{ name: 'fault1', version: '1', images: [
    { phase: 'installation', image: pinned, command: install },
    { phase: 'runtime', image: pinned },
  ] }] }];
  writeFileSync(join(work, 'catalog.json'), JSON.stringify(catalog));
});

test.after(async () => {
  await daemon?.stop();
  await registry?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const fn = (name: string, deps: string) => functionObject(name, { handler: 'handler.run', runtime: 'fault1', function: `echo ${name}\n`, deps });

function options(extra: BuildFunctionOptions = {}, target = registry.host): BuildFunctionOptions {
  return { registry: `${target}/faults`, catalog, docker: daemon.env, ...extra };
}

/**
 * What a call for function `name` could have left in the own daemon: names in its repository
 * (tags, repo@digest references), its function images (labelled with the function, tagged or not)
 * and containers. The deps stage's untagged layers are build cache, kept by design.
 */
async function daemonTraces(name: string, repository = `${registry.host}/faults/${name}`): Promise<string[]> {
  const names = (await daemon.docker(['images', '--digests', '--format', '{{.Repository}}:{{.Tag}}@{{.Digest}}'])).split('\n').filter((line) => line.startsWith(`${repository}:`));
  const images = (await daemon.docker(['images', '-a', '-q', '--filter', `label=io.kubeless.function=${name}`])).split('\n').filter(Boolean).map((id) => `function image ${id}`);
  const containers = (await daemon.docker(['ps', '-aq'])).split('\n').filter(Boolean).map((id) => `container ${id}`);
  return [...names, ...images, ...containers];
}

/** Runs a build that must fail; returns the error and how long it took. */
async function failing(name: string, extra: BuildFunctionOptions, deps = 'slow', target = registry.host): Promise<{ error: BuilderError; ms: number }> {
  const started = Date.now();
  const outcome = await buildFunctionImage(parseFunction(fn(name, deps)), options(extra, target)).then((result: BuildResult) => result, (error: unknown) => error);
  assert.instance(outcome, BuilderError, `a typed error, got ${String(outcome)}`);
  return { error: outcome as BuilderError, ms: Date.now() - started };
}

test('the daemon frozen (SIGSTOP) during RUN: the CLI exits 3 with E_BUILD_TIMEOUT by --timeout; the daemon, thawed, keeps nothing', async () => {
  writeFileSync(join(work, 'frozen-run.yaml'), JSON.stringify(fn('frozen-run', 'slow')));
  const started = Date.now();
  const child = spawn(process.execPath, [CLI, 'build', join(work, 'frozen-run.yaml'), '--registry', `${registry.host}/faults`, '--runtimes', join(work, 'catalog.json'), '--timeout', '12'], {
    env: { PATH: process.env.PATH ?? '', HOME: work, TMPDIR: work, ...daemon.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    if (stderr.includes(STARTED)) daemon.freeze();
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const ms = Date.now() - started;
  daemon.thaw();
  assert.ok(stderr.includes(STARTED), stderr);
  assert.is(code, 3, stderr);
  assert.match(stderr, 'E_BUILD_TIMEOUT');
  // Node's start and the TypeScript load come on top of the limit itself.
  assert.ok(ms < 12_000 + 4_000, `ended after ${ms} ms`);
  // The cancelled request reaches the thawed daemon, which stops and removes the step's container. A
  // timeout is left to the assertion below, which names what is still there.
  await waitFor('the thawed daemon to drop frozen-run', async () => (await daemonTraces('frozen-run')).length === 0, 30_000).catch(() => undefined);
  assert.equal(await daemonTraces('frozen-run'), []);
  assert.equal(await registryTags(registry, 'faults/frozen-run'), []);
  assert.equal(readdirSync(work).filter((name) => !name.endsWith('.yaml') && name !== 'catalog.json'), [], 'no temp file');
});

test('the daemon frozen during the push: E_BUILD_TIMEOUT by timeoutMs, nothing in the registry', async () => {
  const { error, ms } = await failing('frozen-push', {
    timeoutMs: 15_000,
    onProgress: (event) => {
      if (event.kind === 'phase' && event.phase === 'push') daemon.freeze();
    },
  }, 'fast');
  daemon.thaw();
  assert.is(error.code, 'E_BUILD_TIMEOUT', error.message);
  assert.ok(ms <= 15_000 + 500, `ended after ${ms} ms`);
  assert.equal(await registryTags(registry, 'faults/frozen-push'), []);
});

test('registry engine, the daemon frozen during the install step: E_BUILD_TIMEOUT by timeoutMs, cleanup included; the daemon, thawed, keeps nothing', async () => {
  const { error, ms } = await failing('frozen-install', {
    engine: 'registry',
    timeoutMs: 12_000,
    // The step's output is read after it ends, so the freeze follows the install's start by a moment.
    onProgress: (event) => {
      if (event.kind === 'phase' && event.phase === 'build' && event.message.startsWith('installing')) setTimeout(() => daemon.freeze(), 2_000);
    },
  });
  daemon.thaw();
  assert.is(error.code, 'E_BUILD_TIMEOUT', error.message);
  // The step's container cannot be removed from a frozen daemon: that try ends with the limit too.
  assert.ok(ms <= 12_000 + 500, `ended after ${ms} ms`);
  await waitFor('the thawed daemon to drop frozen-install', async () => (await daemonTraces('frozen-install')).length === 0, 30_000).catch(() => undefined);
  assert.equal(await daemonTraces('frozen-install'), []);
  assert.equal(await registryTags(registry, 'faults/frozen-install'), []);
});

test('the daemon SIGKILLed mid-RUN and started again: an infrastructure error, and the step\'s container is removed', async () => {
  let fault: Promise<void> | undefined;
  const { error } = await failing('killed-run', {
    timeoutMs: 60_000,
    onProgress: (event) => {
      if (event.kind === 'output' && event.line === STARTED) fault ??= daemon.kill().then(() => daemon.start());
    },
  });
  await fault;
  assert.is(error.kind, 'infrastructure', `${error.code}: ${error.message}`);
  assert.equal(await daemonTraces('killed-run'), []);
  assert.equal(await registryTags(registry, 'faults/killed-run'), []);
});

test('the daemon restarted mid-RUN (the step ends with exit code 137): an infrastructure error (exit 3), not the function\'s fault', async () => {
  let fault: Promise<void> | undefined;
  const { error } = await failing('restarted-run', {
    timeoutMs: 90_000,
    onProgress: (event) => {
      if (event.kind === 'output' && event.line === STARTED) fault ??= daemon.restart();
    },
  });
  await fault;
  assert.is(error.kind, 'infrastructure', `${error.code}: ${error.message}`);
  assert.equal(await daemonTraces('restarted-run'), []);
});

test('the daemon restarted mid-push: an infrastructure error and no local tag or repo@digest left; a rerun pushes', async () => {
  let fault: Promise<void> | undefined;
  const { error } = await failing('restarted-push', {
    timeoutMs: 90_000,
    onProgress: (event) => {
      if (event.kind === 'phase' && event.phase === 'push') fault ??= daemon.restart();
    },
  }, 'fast');
  await fault;
  assert.is(error.kind, 'infrastructure', `${error.code}: ${error.message}`);
  assert.equal(await daemonTraces('restarted-push'), []);
  const rerun = await buildFunctionImage(parseFunction(fn('restarted-push', 'fast')), options());
  assert.ok(rerun.pushed);
  assert.equal(await daemonTraces('restarted-push'), []);
});

test('two CLI processes building the same function in one daemon at once: both succeed, neither leaves a tag, repo@digest or function image', async () => {
  writeFileSync(join(work, 'concurrent.yaml'), JSON.stringify(fn('concurrent', 'fast')));
  const run = () => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [CLI, 'build', join(work, 'concurrent.yaml'), '--registry', `${registry.host}/faults`, '--runtimes', join(work, 'catalog.json')], {
      env: { PATH: process.env.PATH ?? '', HOME: work, ...daemon.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  const [first, second] = await Promise.all([run(), run()]);
  assert.is(first!.code, 0, first!.stderr);
  assert.is(second!.code, 0, second!.stderr);
  for (const { stdout } of [first!, second!]) assert.match(stdout, new RegExp(`^${registry.host}/faults/concurrent@sha256:[0-9a-f]{64}\\n$`));
  assert.equal(await daemonTraces('concurrent'), []);
  assert.is((await registryTags(registry, 'faults/concurrent')).length, 1);
});

test('the registry killed mid-push: a typed infrastructure error within the limit, no tag; restarted, a rerun pushes', async () => {
  let killed: Promise<void> | undefined;
  const { error, ms } = await failing('killed-registry', {
    timeoutMs: 60_000,
    onProgress: (event) => {
      if (event.kind === 'phase' && event.phase === 'push') killed ??= registry.kill();
    },
  }, 'fast');
  await killed;
  try {
    assert.is(error.kind, 'infrastructure', `${error.code}: ${error.message}`);
    assert.ok(ms <= 60_000 + 500, `ended after ${ms} ms`);
    assert.equal(await daemonTraces('killed-registry'), []);
  } finally {
    await registry.restart();
  }
  assert.equal(await registryTags(registry, 'faults/killed-registry'), [], 'no half-pushed tag');
  const rerun = await buildFunctionImage(parseFunction(fn('killed-registry', 'fast')), options());
  assert.ok(rerun.pushed);
  assert.equal(await registryTags(registry, 'faults/killed-registry'), [rerun.tag]);
});

test('a registry answering 500 to the push: a typed infrastructure error within the limit, no tag, nothing left in the daemon', async () => {
  const proxy = await startFaultProxy(registry.url, { intercept: (request) => (request.method === 'HEAD' || request.method === 'GET' ? undefined : { status: 500, body: '{"errors":[{"code":"UNKNOWN","message":"storage failed"}]}' }) });
  try {
    const { error, ms } = await failing('registry-500', { timeoutMs: 60_000 }, 'fast', proxy.host);
    assert.ok(['E_PUSH_FAILED', 'E_BUILD_TIMEOUT'].includes(error.code), `${error.code}: ${error.message}`);
    assert.is(error.kind, 'infrastructure');
    assert.ok(ms <= 60_000 + 500);
    assert.ok(proxy.requests.some((r) => r.status === 500), 'the push reached the failing registry');
    assert.equal(await daemonTraces('registry-500', `${proxy.host}/faults/registry-500`), []);
  } finally {
    await proxy.stop();
  }
  assert.equal(await registryTags(registry, 'faults/registry-500'), []);
});

test.run();
