// `function-image-builder wait <image>` as an init container runs it: credentials from the mounted
// registry Secret directory, against a real Basic-auth registry; the image is pushed while it waits.
// And against a TLS registry whose CA it is not given: only with certificate verification off.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { docker } from '../support/docker.ts';
import { dockerClientConfig, startRegistry, type RegistryHandle } from '../support/registry.ts';
import { buildTinyImage, type TinyImage } from '../support/tiny-image.ts';

const CLI = resolve(import.meta.dirname, '..', '..', 'cli', 'main.ts');

let registry: RegistryHandle;
let secretDir: string;
let tiny: TinyImage | undefined;
let tlsRegistry: RegistryHandle;
let tlsTiny: TinyImage | undefined;

test.before(async () => {
  registry = await startRegistry('basic');
  secretDir = mkdtempSync(join(tmpdir(), 'fib-wait-secret-'));
  writeFileSync(join(secretDir, '.dockerconfigjson'), registry.dockerConfigJson!);
  tlsRegistry = await startRegistry('tls');
  tlsTiny = await buildTinyImage(`${tlsRegistry.host}/fib-wait/tls`);
  // The Engine trusts the rig's CA (certs.d); the wait command is never given it.
  await docker(['push', '-q', tlsTiny.image]);
});

test.after(async () => {
  await tiny?.remove();
  await tlsTiny?.remove();
  await tlsRegistry?.stop();
  await registry?.stop();
  rmSync(secretDir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

function runWait(args: string[], env: Record<string, string> = {}): { done: Promise<Run>; output: () => string } {
  const started = Date.now();
  const child = spawn(process.execPath, [CLI, 'wait', ...args], {
    env: { ...process.env, BUILDER_SECRET_DIR: secretDir, BUILDER_CONFIG_DIR: join(secretDir, 'none'), ...env },
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
  // Let it find the image missing often enough for the delay to reach --max-interval.
  const deadline = Date.now() + 20_000;
  while (events(waiting.output()).filter((e) => e.event === 'image-missing').length < 6) {
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
  // The delay grows from --interval (0.2 s) by 1.5x and stops at --max-interval (0.5 s); each gap
  // also holds one registry round trip on loopback.
  const times = log.filter((e) => e.event === 'image-missing').map((e) => Date.parse(e.time));
  const gaps = times.slice(1).map((time, i) => time - times[i]!);
  assert.ok(gaps.length >= 5, `gaps: ${gaps}`);
  assert.ok(gaps[2]! - gaps[0]! >= 100, `the delay grows: ${gaps}`);
  // Without the cap the fifth delay would be 1.0 s.
  assert.ok(gaps.slice(0, 5).every((gap) => gap >= 200 && gap < 850), `the delay stops at --max-interval: ${gaps}`);
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

test('--tls-verify=false (or BUILDER_REGISTRY_TLS_VERIFY=false) reaches a TLS registry whose CA it lacks; without it the check fails at once', async () => {
  const flag = await runWait([tlsTiny!.image, '--tls-verify=false', '--timeout', '20']).done;
  assert.is(flag.code, 0, flag.stderr + flag.stdout);
  assert.ok(events(flag.stdout).some((e) => e.event === 'image-found'), flag.stdout);
  assert.ok(events(flag.stdout).some((e) => e.event === 'waiting' && e.tlsVerify === false));
  const env = await runWait([tlsTiny!.image, '--timeout', '20'], { BUILDER_REGISTRY_TLS_VERIFY: 'false' }).done;
  assert.is(env.code, 0, env.stderr + env.stdout);
  const refused = await runWait([tlsTiny!.image, '--timeout', '20']).done;
  assert.is(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, 'E_REGISTRY_TLS');
  assert.match(refused.stderr, tlsRegistry.host);
  assert.ok(refused.ms < 10_000, `a certificate problem is not waited out: took ${refused.ms} ms`);
});

test('a bad command line is a usage error (exit 2)', async () => {
  const run = await runWait(['--timeout', 'soon', 'x/y:z']).done;
  assert.is(run.code, 2);
  assert.match(run.stderr, '--timeout takes a positive number of seconds');
});

test.run();
