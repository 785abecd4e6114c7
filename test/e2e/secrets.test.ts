// Secrets (issue 11.7), with a basic-auth registry as source and target: no byte of the registry
// password or of base64(user:password) in the CLI's stdout, stderr, --json, errors, the Job manifest,
// the build context or the pushed image (every layer, the config, the history); a Function env
// value (a plain `value`, say a password) reaches the install step but is in no output line and
// nowhere in the pushed image.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { extract as tarExtract } from 'tar-stream';
import { stringify } from 'yaml';
import { buildFunctionImage } from '../../lib/build.ts';
import type { BuilderError } from '../../lib/errors.ts';
import { createBuildContext } from '../../lib/image/context.ts';
import { resolveBuildPlan } from '../../lib/image/plan.ts';
import { parseRuntimeCatalog } from '../../lib/runtime/catalog.ts';
import { docker, exec } from '../support/docker.ts';
import { functionObject, startPipelineRig, type PipelineRig } from '../support/pipeline.ts';
import { dockerClientConfig } from '../support/registry.ts';
import { parseFunction } from '../../lib/function/parse.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'cli', 'main.ts');
const FIXTURES = join(ROOT, 'fixtures', 'functions', 'runtimes');
const ENV_SECRET = `fib-env-secret-${Math.random().toString(36).slice(2, 12)}`;

let rig: PipelineRig;
let dir: string;
let secrets: string[];

test.before(async () => {
  rig = await startPipelineRig('secrets', ['basic']);
  dir = mkdtempSync(join(tmpdir(), 'fib-secrets-'));
  const { username, password } = rig.source;
  secrets = [password!, Buffer.from(`${username}:${password}`).toString('base64')];
  writeFileSync(join(dir, 'runtime-images.json'), JSON.stringify(rig.catalog));
  writeFileSync(join(dir, 'config.json'), rig.dockerConfigJson);
  const fn = functionObject('secret-env', {
    handler: 'handler.hello',
    runtime: 'nodejs24',
    function: readFileSync(join(FIXTURES, 'nodejs-deps', 'handler.js'), 'utf8'),
    deps: readFileSync(join(FIXTURES, 'nodejs-deps', 'package.json'), 'utf8'),
  }, { DB_PASSWORD: ENV_SECRET });
  writeFileSync(join(dir, 'function.yaml'), stringify(fn));
  // The same Function on an install step that prints its env and fails.
  const failing = structuredClone(rig.catalog);
  failing.find((r) => r.ID === 'nodejs')!.versions[0]!.images.find((i) => i.phase === 'installation')!.command = 'env; echo "password is $DB_PASSWORD"; exit 1';
  writeFileSync(join(dir, 'failing-runtime-images.json'), JSON.stringify(failing));
});

test.after(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await rig?.stop();
});

function cli(args: string[]) {
  return exec(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', HOME: dir }, timeoutMs: 300_000 });
}

function assertClean(what: string, text: string | Buffer, extra: string[] = []): void {
  const haystack = Buffer.isBuffer(text) ? text : Buffer.from(text);
  for (const secret of [...secrets, ...extra]) assert.is(haystack.indexOf(secret), -1, `${what} holds a secret (${secret.slice(0, 4)}...)`);
}

/** Every file of every layer of a `docker save` tar, with the config and manifests, as one buffer. */
async function savedImageBytes(image: string): Promise<Buffer> {
  const saved = join(dir, 'saved.tar');
  await docker(['save', '-o', saved, image]);
  const parts: Buffer[] = [];
  const unpack = async (tar: Buffer) => {
    const extract = tarExtract();
    extract.end(tar);
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      const content = Buffer.concat(chunks);
      parts.push(Buffer.from(entry.header.name), content);
      // Layers are tars (gzipped or not) inside the saved tar.
      if (entry.header.name.endsWith('.tar')) await unpack(content);
      else if (content[0] === 0x1f && content[1] === 0x8b) await unpack(gunzipSync(content));
    }
  };
  await unpack(readFileSync(saved));
  rmSync(saved);
  return Buffer.concat(parts);
}

test('a build with a basic-auth registry: no password or auth in stdout, stderr, --json or the image; the env value in no output line and not in the image', async () => {
  const run = await cli(['build', join(dir, 'function.yaml'), '--registry', `${rig.source.host}/secrets`, '--runtimes', join(dir, 'runtime-images.json'), '--docker-config', join(dir, 'config.json'), '--json']);
  assert.is(run.code, 0, run.stderr);
  assertClean('stdout (--json)', run.stdout, [ENV_SECRET]);
  assertClean('stderr', run.stderr, [ENV_SECRET]);
  const { reference } = JSON.parse(run.stdout) as { reference: string };

  const config = dockerClientConfig(rig.source);
  try {
    await docker(['--config', config.dir, 'pull', '-q', reference]);
  } finally {
    config.cleanup();
  }
  try {
    const metadata = (await docker(['image', 'inspect', reference])) + (await docker(['history', '--no-trunc', reference]));
    assertClean('the image config and history', metadata, [ENV_SECRET]);
    assertClean('the image layers', await savedImageBytes(reference), [ENV_SECRET]);
  } finally {
    await exec('docker', ['rmi', reference]);
  }
});

test('a failing install step that prints the env: the error names the step and shows its output with the value hidden, exit 2', async () => {
  const run = await cli(['build', join(dir, 'function.yaml'), '--registry', `${rig.source.host}/secrets`, '--runtimes', join(dir, 'failing-runtime-images.json'), '--docker-config', join(dir, 'config.json'), '--json']);
  assert.is(run.code, 2, run.stderr);
  assert.match(run.stderr, 'E_BUILD_FAILED');
  assert.match(run.stderr, 'password is ***');
  assertClean('stdout', run.stdout, [ENV_SECRET]);
  assertClean('stderr', run.stderr, [ENV_SECRET]);
});

test('the registry engine\'s install step: its output in the error has the env value hidden too', async () => {
  const fn = readFileSync(join(dir, 'function.yaml'), 'utf8');
  const catalog = JSON.parse(readFileSync(join(dir, 'failing-runtime-images.json'), 'utf8')) as unknown[];
  const error = (await buildFunctionImage(parseFunction(fn), { engine: 'registry', registry: `${rig.source.host}/secrets-registry-engine`, catalog, dockerConfig: rig.dockerConfigJson }).then(
    () => assert.unreachable('the install step fails'),
    (e: unknown) => e,
  )) as BuilderError;
  assert.is(error.code, 'E_BUILD_FAILED', error.message);
  assert.match(error.message, 'password is ***');
  assertClean('the error', JSON.stringify({ message: error.message, details: error.details }), [ENV_SECRET]);
});

test('the Job manifest and the build context hold no registry password', async () => {
  const manifest = await cli(['job-manifest', join(dir, 'function.yaml'), '--builder-image', 'registry.example.com/fib:1', '--registry', `${rig.source.host}/secrets`, '--runtimes', join(dir, 'runtime-images.json'), '--docker-config', join(dir, 'config.json')]);
  assert.is(manifest.code, 0, manifest.stderr);
  assertClean('the Job manifest', manifest.stdout);
  assert.not.match(manifest.stdout, /kind: ConfigMap/, 'the Function (env values included) travels in a Secret');

  const fn = readFileSync(join(dir, 'function.yaml'), 'utf8');
  const plan = await resolveBuildPlan(fn, { catalog: parseRuntimeCatalog(rig.catalog), resolveImageDigest: async (image) => `${image.slice(0, image.lastIndexOf(':'))}@sha256:${'0'.repeat(64)}` });
  const context = await createBuildContext(plan);
  assertClean('the build context', context.tar);
  assertClean('the Dockerfile', context.dockerfile, [ENV_SECRET]);
});

test.run();
