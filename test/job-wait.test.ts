// `function-image-builder wait <image>` as an init container runs it: credentials from the mounted
// registry Secret directory, against a real Basic-auth registry; the image is pushed while it waits.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { docker } from './support/docker.ts';
import { dockerClientConfig, startRegistry, type RegistryHandle } from './support/registry.ts';
import { buildTinyImage, type TinyImage } from './support/tiny-image.ts';

const CLI = resolve(import.meta.dirname, '..', 'job', 'cli.ts');

let registry: RegistryHandle;
let secretDir: string;
let tiny: TinyImage | undefined;

test.before(async () => {
  registry = await startRegistry('basic');
  secretDir = mkdtempSync(join(tmpdir(), 'fib-wait-secret-'));
  writeFileSync(join(secretDir, '.dockerconfigjson'), registry.dockerConfigJson!);
});

test.after(async () => {
  await tiny?.remove();
  await registry?.stop();
  rmSync(secretDir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

function runWait(args: string[]): { done: Promise<Run>; output: () => string } {
  const started = Date.now();
  const child = spawn(process.execPath, [CLI, 'wait', ...args], {
    env: { ...process.env, BUILDER_SECRET_DIR: secretDir, BUILDER_CONFIG_DIR: join(secretDir, 'none') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<Run>((resolveRun) => child.on('close', (code) => resolveRun({ code: code ?? -1, stdout, stderr, ms: Date.now() - started })));
  return { done, output: () => stdout };
}

function events(stdout: string): Record<string, any>[] {
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, any>);
}

test('returns once the image appears, pushed while it waits, using the mounted Secret', async () => {
  const repository = `${registry.host}/fib-wait/tiny`;
  tiny = await buildTinyImage(repository);
  const waiting = runWait([tiny.image, '--timeout', '60', '--interval', '0.2', '--max-interval', '0.5']);
  // Let it find the image missing a few times first.
  const deadline = Date.now() + 20_000;
  while (events(waiting.output()).filter((e) => e.event === 'image-missing').length < 2) {
    if (Date.now() > deadline) throw new Error(`wait never reported the image missing:\n${waiting.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const config = dockerClientConfig(registry);
  let digest: string | undefined;
  try {
    const pushed = await docker(['--config', config.dir, 'push', tiny.image]);
    digest = /digest: (sha256:[0-9a-f]{64})/.exec(pushed)?.[1];
  } finally {
    config.cleanup();
  }
  const run = await waiting.done;
  assert.is(run.code, 0, run.stderr + run.stdout);
  const log = events(run.stdout);
  const found = log.find((e) => e.event === 'image-found');
  assert.ok(found, run.stdout);
  assert.is(found!.digest, digest);
  assert.is(log.find((e) => e.event === 'waiting')!.credentialKey, registry.host);
  for (const line of log) assert.ok(typeof line.time === 'string' && typeof line.level === 'string' && typeof line.event === 'string');
  assert.not.match(run.stdout + run.stderr, registry.password!);
});

test('fails cleanly at its deadline with the infrastructure exit code', async () => {
  const run = await runWait([`${registry.host}/fib-wait/never:1`, '--timeout', '2', '--interval', '0.3']).done;
  assert.is(run.code, 3, run.stderr);
  assert.match(run.stderr, 'E_WAIT_TIMEOUT');
  assert.match(run.stderr, `${registry.host}/fib-wait/never:1 did not appear within 2 s`);
  assert.ok(run.ms < 10_000, `took ${run.ms} ms`);
  assert.ok(events(run.stdout).filter((e) => e.event === 'image-missing').length >= 2);
});

test('an unreachable registry is retried until the deadline, and the last problem is named', async () => {
  const run = await runWait(['127.0.0.1:9/fib-wait/nothing:1', '--timeout', '1.5', '--interval', '0.3']).done;
  assert.is(run.code, 3, run.stderr);
  assert.match(run.stderr, 'E_REGISTRY_UNREACHABLE');
});

test('a bad command line is a usage error (exit 2)', async () => {
  const run = await runWait(['--timeout', 'soon', 'x/y:z']).done;
  assert.is(run.code, 2);
  assert.match(run.stderr, '--timeout takes a positive number of seconds');
});

test.run();
