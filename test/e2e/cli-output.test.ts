// `function-image-builder build --output oci:DIR | docker-archive:FILE`, run as a user runs it (a
// child process) against the pipeline rig: nothing is pushed; the archive is `docker load`ed and the
// layout copied into the Docker Engine by skopeo and unpacked by umoci, and the function answers; a
// second build on the same runtime downloads no base layer (the result's byte counts, and the cache's
// files untouched); bad output specs exit 2 and leave nothing behind.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { docker, exec } from '../support/docker.ts';
import { strays } from '../support/files.ts';
import { callFunctionImage } from '../support/function-container.ts';
import { functionObject, registryTags, startPipelineRig, type PipelineRig } from '../support/pipeline.ts';

const test = suite('cli --output');
const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'cli', 'main.ts');
const FIXTURES = join(ROOT, 'fixtures', 'functions', 'runtimes');

let rig: PipelineRig;
let dir: string;
let common: string[];

interface Result {
  image: string;
  tag: string;
  reference: string;
  pushed: boolean;
  output: { format: string; path: string; manifestDigest: string; configDigest: string; bytes: { downloaded: number; cached: number; local: number } };
}

test.before(async () => {
  rig = await startPipelineRig('cli-output', []);
  dir = mkdtempSync(join(tmpdir(), 'fib-cli-output-'));
  writeFileSync(join(dir, 'runtime-images.json'), JSON.stringify(rig.catalog));
  writeFileSync(join(dir, 'config.json'), rig.dockerConfigJson);
  common = ['--runtimes', join(dir, 'runtime-images.json'), '--docker-config', join(dir, 'config.json'), '--cache-dir', join(dir, 'cache'), '--json'];
});

test.after(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await rig?.stop();
});

function cli(args: string[]) {
  return exec(process.execPath, [CLI, ...args], { cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: dir }, timeoutMs: 300_000 });
}

function writeFunction(file: string, name: string, spec: Record<string, unknown>): string {
  const path = join(dir, file);
  writeFileSync(path, stringify(functionObject(name, spec)));
  return path;
}

function nodeFunction(name: string, greeting: string): Record<string, unknown> {
  return { handler: 'handler.hello', runtime: 'nodejs24', function: `module.exports = { hello: (event) => ${JSON.stringify(greeting)} + ' ' + event.data };\n` };
}

async function call(image: string, body: string): Promise<string> {
  const { status, text } = await callFunctionImage(image, body);
  return `${status} ${text}`;
}

/** The cache's blob files with their modification times: a second build that downloads nothing changes none. */
function cacheFiles(): Record<string, number> {
  const root = join(dir, 'cache');
  const out: Record<string, number> = {};
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) out[join(entry.parentPath, entry.name)] = statSync(join(entry.parentPath, entry.name)).mtimeMs;
  }
  return out;
}

test('docker-archive: nothing pushed, docker load runs the function; a second function on that runtime downloads no base layer', async () => {
  const file = writeFunction('hello.yaml', 'out-hello', nodeFunction('out-hello', 'hello from the archive,'));
  const run = await cli(['build', file, '--output', 'docker-archive:hello.tar', ...common]);
  assert.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout) as Result;
  assert.is(result.pushed, false);
  assert.is(result.output.format, 'docker-archive');
  assert.is(result.output.path, join(dir, 'hello.tar'));
  assert.ok(result.output.bytes.downloaded > 0, 'the first build fills the cache');
  assert.match(run.stderr, 'downloaded into the cache');
  // The docker config's only entry names the target; nothing was pushed there.
  const repository = result.image.slice(result.image.indexOf('/') + 1, result.image.lastIndexOf(':'));
  assert.equal(await registryTags(rig.source, repository), []);

  const loaded = await docker(['load', '-i', join(dir, 'hello.tar')]);
  assert.match(loaded, `Loaded image: ${result.image}`);
  try {
    assert.is(await call(result.image, 'world'), '200 hello from the archive, world');
  } finally {
    await exec('docker', ['rmi', result.image]);
  }

  const cacheBefore = cacheFiles();
  const second = writeFunction('second.yaml', 'out-second', nodeFunction('out-second', 'second'));
  const again = await cli(['build', second, '--output', 'docker-archive:second.tar', ...common]);
  assert.is(again.code, 0, again.stderr);
  const secondResult = JSON.parse(again.stdout) as Result;
  assert.is(secondResult.output.bytes.downloaded, 0, 'no base layer downloaded');
  assert.is(secondResult.output.bytes.cached, result.output.bytes.cached + result.output.bytes.downloaded);
  assert.equal(cacheFiles(), cacheBefore, 'the cache is unchanged');
  assert.match(again.stderr, 'found in the cache');
  assert.equal(strays(dir), []);
});

test('two builds in two processes filling one empty cache at once both succeed; every blob is whole, no temp file', async () => {
  const cacheDir = join(dir, 'shared-cache');
  const args = (name: string) => ['build', writeFunction(`${name}.yaml`, name, nodeFunction(name, name)), '--output', `docker-archive:${name}.tar`, ...common, '--cache-dir', cacheDir];
  const [a, b] = await Promise.all([cli(args('race-a')), cli(args('race-b'))]);
  assert.is(a.code, 0, a.stderr);
  assert.is(b.code, 0, b.stderr);
  const files = readdirSync(cacheDir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
  assert.equal(files.filter((e) => e.name.startsWith('.tmp-')), []);
  assert.ok(files.length > 0);
  for (const blob of files) {
    const hex = createHash('sha256').update(readFileSync(join(blob.parentPath, blob.name))).digest('hex');
    assert.is(hex, blob.name, 'every stored blob is whole: its bytes hash to its name');
  }
  for (const result of [a, b]) {
    const image = (JSON.parse(result.stdout) as Result).image;
    assert.match(await docker(['load', '-i', join(dir, `${image.includes('race-a') ? 'race-a' : 'race-b'}.tar`)]), `Loaded image: ${image}`);
    await exec('docker', ['rmi', image]);
  }
});

test('oci: a function with deps; skopeo copies the layout into the Docker Engine, it runs; umoci unpacks it', async () => {
  const file = writeFunction('deps.yaml', 'out-deps', {
    handler: 'handler.hello',
    runtime: 'python3.11',
    function: readFileSync(join(FIXTURES, 'python-deps', 'handler.py'), 'utf8'),
    deps: readFileSync(join(FIXTURES, 'python-deps', 'requirements.txt'), 'utf8'),
  });
  const run = await cli(['build', file, '--output', 'oci:layout', ...common]);
  assert.is(run.code, 0, run.stderr);
  const result = JSON.parse(run.stdout) as Result;
  assert.is(result.output.format, 'oci');
  const index = JSON.parse(readFileSync(join(dir, 'layout', 'index.json'), 'utf8')) as { manifests: { digest: string; annotations: Record<string, string> }[] };
  assert.is(index.manifests[0]?.digest, result.output.manifestDigest);
  assert.is(index.manifests[0]?.annotations['org.opencontainers.image.ref.name'], result.tag);

  const copied = await exec('skopeo', ['copy', `oci:${join(dir, 'layout')}`, `docker-daemon:${result.image}`]);
  assert.is(copied.code, 0, copied.stderr);
  try {
    assert.is(await call(result.image, 'layout'), '200 hello layout, from fib-greeting 1.0.0');
  } finally {
    await exec('docker', ['rmi', result.image]);
  }
  const unpacked = await exec('umoci', ['unpack', '--rootless', '--image', `${join(dir, 'layout')}:${result.tag}`, join(dir, 'bundle')]);
  assert.is(unpacked.code, 0, unpacked.stderr);
  assert.ok(existsSync(join(dir, 'bundle', 'rootfs', 'kubeless', 'handler.py')));
  const installed = readdirSync(join(dir, 'bundle', 'rootfs', 'kubeless'), { recursive: true }).map(String);
  assert.ok(installed.some((path) => path.includes('fib_greeting')), `the installed deps are in /kubeless: ${installed.join(', ')}`);
  assert.equal(strays(dir), []);
});

test('bad output specs and combinations exit 2 with a clear error, before anything is built or written', async () => {
  const file = writeFunction('bad.yaml', 'out-bad', nodeFunction('out-bad', 'never'));
  const cases: [string[], string][] = [
    [['--output', 'tar:x'], 'E_OUTPUT_INVALID: output "tar:x": write oci:DIR (an OCI image layout) or docker-archive:FILE'],
    [['--output', 'oci:'], 'give the directory'],
    [['--output', 'docker-archive:.'], 'is a directory'],
    [['--output', 'oci:no/such/parent'], `the directory ${join(dir, 'no', 'such')} does not exist`],
    [['--output', 'oci:x', '--no-push'], 'E_OUTPUT_INVALID: output "oci:x": the image is written by the registry engine instead of being pushed; drop push: false (--no-push)'],
    [['--output', 'oci:x', '--engine', 'docker'], "drop engine: 'docker' (--engine docker)"],
    [['--cache-dir', 'c'], 'E_USAGE: --cache-dir is the base layer cache of --output'],
  ];
  mkdirSync(join(dir, 'mine'));
  writeFileSync(join(dir, 'mine', 'keep.txt'), 'mine');
  cases.push([['--output', 'oci:mine'], 'neither empty nor an OCI image layout']);
  const before = readdirSync(dir).sort();
  for (const [args, message] of cases) {
    const run = await cli(['build', file, ...args, ...common]);
    assert.is(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, message);
    assert.is(run.stdout, '');
  }
  // Two Functions, one output.
  const both = join(dir, 'both.yaml');
  writeFileSync(both, `${stringify(functionObject('a', nodeFunction('a', 'a')))}---\n${stringify(functionObject('b', nodeFunction('b', 'b')))}`);
  const two = await cli(['build', both, '--output', 'oci:two', ...common]);
  assert.is(two.code, 2, two.stderr);
  assert.match(two.stderr, 'holds one image, and the file has 2 Functions');
  assert.equal(readdirSync(dir).sort(), [...before, 'both.yaml'].sort(), 'nothing was written');
  assert.equal(readdirSync(join(dir, 'mine')), ['keep.txt']);
});

test('a build cut off by --timeout leaves no output and no temp file', async () => {
  const file = writeFunction('slow.yaml', 'out-slow', nodeFunction('out-slow', 'slow'));
  const run = await cli(['build', file, '--output', 'docker-archive:slow.tar', '--timeout', '0.05', ...common]);
  assert.is(run.code, 3, run.stderr);
  assert.match(run.stderr, 'E_BUILD_TIMEOUT');
  assert.not.ok(existsSync(join(dir, 'slow.tar')));
  assert.equal(strays(dir), []);
  const temps = Object.keys(cacheFiles()).filter((path) => path.includes('.tmp-'));
  assert.equal(temps, [], 'no temp file in the cache');
});

test.run();
