// Identity and caching: a second build of the same Function is one registry request and no daemon
// contact; every input that changes the image changes the tag (and nothing else does); a code-only
// change reuses the installed dependencies, as the build output shows; the Function's env reaches
// the install step.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildFunctionImage, type BuildFunctionOptions, type BuildProgress } from '../../lib/build.ts';
import { functionImageTag } from '../../lib/image/identity.ts';
import { parseDockerConfig } from '../../lib/registry/credentials.ts';
import { parseRuntimeCatalog } from '../../lib/runtime/catalog.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { freePort } from '../support/net.ts';
import { callBuiltFunction, functionObject, LOOPBACK_SOURCES, startPipelineRig, type PipelineRig } from '../support/pipeline.ts';
import { parseFunction } from '../../lib/function/parse.ts';

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'functions', 'runtimes');
const fixture = (path: string) => readFileSync(join(FIXTURES, path), 'utf8');
const sha256 = (data: string | Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

let rig: PipelineRig;
/** The target registry, seen through a proxy that records every request. */
let proxy: FaultProxy;
let npmRegistry: string;

test.before(async () => {
  try {
    rig = await startPipelineRig('build-cache', ['anonymous']);
    proxy = await startFaultProxy(rig.targets.anonymous!.url);
    npmRegistry = `http://npm.${rig.scope.value}.example/`;
  } catch (error) {
    console.error('pipeline rig failed to start:', error);
    throw error;
  }
});

test.after(async () => {
  await proxy?.stop();
  await rig?.stop();
});

function options(extra: BuildFunctionOptions = {}): BuildFunctionOptions {
  return { registry: `${proxy.host}/cache`, catalog: rig.catalog, dockerConfig: rig.dockerConfigJson, registries: rig.registries, download: LOOPBACK_SOURCES, ...extra };
}

/** The output lines of the build step whose instruction contains `marker`. */
function stepOutput(events: BuildProgress[], marker: string): string[] | undefined {
  let inside = false;
  let lines: string[] | undefined;
  for (const event of events) {
    if (event.kind === 'step') {
      inside = event.instruction.includes(marker);
      if (inside) lines = [];
    } else if (event.kind === 'output' && inside) lines?.push(event.line);
  }
  return lines;
}

const withDeps = (code = fixture('nodejs-deps/handler.js'), deps = fixture('nodejs-deps/package.json')) =>
  functionObject('cached-fn', { handler: 'handler.hello', runtime: 'nodejs24', function: code, deps }, { NPM_REGISTRY: npmRegistry });

test('the second build of the same Function is cached: one registry request, the daemon never contacted', async () => {
  const events: BuildProgress[] = [];
  const first = await buildFunctionImage(parseFunction(withDeps()), options({ onProgress: (e) => events.push(e) }));
  assert.is(first.cached, false);
  const install = stepOutput(events, 'kubeless-npm-install.sh');
  assert.ok(install, 'the build has an install step');
  // The function's env reaches the dependency install (Kubeless never passed it); npm's registry is
  // that value, which the output shows hidden, as it shows every value of the function's env.
  assert.ok(install!.includes('kubeless-npm-install: registry ***'), install!.join('\n'));
  assert.not.ok(events.some((e) => JSON.stringify(e).includes(npmRegistry)), 'the value is in no progress event');

  proxy.requests.length = 0;
  const closed = await freePort();
  const second = await buildFunctionImage(parseFunction(withDeps()), options({ docker: { DOCKER_HOST: `tcp://127.0.0.1:${closed}` } }));
  assert.is(second.cached, true);
  assert.is(second.pushed, false);
  assert.is(second.tag, first.tag);
  assert.is(second.digest, first.digest);
  assert.is(second.reference, first.reference);
  assert.equal(
    proxy.requests.map((r) => `${r.method} ${r.path}`),
    [`HEAD /v2/cache/cached-fn/manifests/${first.tag}`],
  );
  assert.is(second.timings.buildMs, 0);
});

test('a code-only change builds a new tag without re-running the dependency install (build output says "Using cache")', async () => {
  const first = await buildFunctionImage(parseFunction(withDeps()), options());
  const events: BuildProgress[] = [];
  const changed = await buildFunctionImage(parseFunction(withDeps(fixture('nodejs-deps/handler.js').replace('return greet', 'return  greet'))), options({ onProgress: (e) => events.push(e) }));
  assert.is(changed.cached, false);
  assert.is.not(changed.tag, first.tag);
  const install = stepOutput(events, 'kubeless-npm-install.sh');
  assert.ok(install, 'the build has an install step');
  assert.ok(install!.includes(' ---> Using cache'), `install step output:\n${install!.join('\n')}`);
  assert.not.ok(install!.some((line) => line.startsWith('kubeless-npm-install:')), 'the install script did not run');
  assert.not.ok(install!.some((line) => /added \d+ package/.test(line)), 'npm did not run');
  const answer = await callBuiltFunction(changed.reference, undefined, 'cache');
  assert.is(answer.text, 'hello cache, from fib-greeting 1.0.0');

  // A deps change does run the install again.
  const depsEvents: BuildProgress[] = [];
  const deps = JSON.parse(fixture('nodejs-deps/package.json')) as Record<string, unknown>;
  deps.description = 'changed';
  const depsChanged = await buildFunctionImage(parseFunction(withDeps(undefined, JSON.stringify(deps, null, 2))), options({ onProgress: (e) => depsEvents.push(e) }));
  assert.is(depsChanged.cached, false);
  const reinstall = stepOutput(depsEvents, 'kubeless-npm-install.sh');
  assert.ok(reinstall!.some((line) => line.startsWith('kubeless-npm-install: registry')), reinstall!.join('\n'));
});

test('every input that changes the image gives a new tag; the build uses the tag functionImageTag() computes', async () => {
  // A second nodejs version with the same images: only the runtime name differs.
  const catalog = structuredClone(rig.catalog);
  const node = catalog.find((r) => r.ID === 'nodejs')!;
  node.versions.push({ ...structuredClone(node.versions[0]!), name: 'node25', version: '25' });
  const code = fixture('nodejs/handler.js');
  const source = Buffer.from(code);
  const url = (content: Buffer) => rig.files.put(`variant-${sha256(content).slice(7, 19)}.js`, content);
  const base = { handler: 'handler.text', runtime: 'nodejs24', 'function-content-type': 'url', function: url(source), checksum: sha256(source), timeout: '180' };
  const changedSource = Buffer.from(code.replace('characters', 'character(s)'));
  const text = { ...base, 'function-content-type': 'text', function: code, checksum: undefined };
  const oneByte = code.replace('got ', 'got:');
  assert.is(oneByte.length, code.length);
  assert.is([...oneByte].filter((ch, i) => ch !== code[i]).length, 1, 'the one-byte variant differs from its text base by exactly one byte');
  const variants: Record<string, Record<string, unknown>> = {
    base,
    runtime: { ...base, runtime: 'nodejs25' },
    handler: { ...base, handler: 'handler.later' },
    timeout: { ...base, timeout: '30' },
    'url content and its checksum': { ...base, function: url(changedSource), checksum: sha256(changedSource) },
    'content type (the same code as text)': text,
    // Against the text row: same content type, one byte of the code is all that differs.
    'one byte of code': { ...text, function: oneByte },
    deps: { ...base, deps: fixture('nodejs-deps/package.json') },
  };
  const tags = new Map<string, string>();
  for (const [what, spec] of Object.entries(variants)) {
    const fn = functionObject('variant-fn', spec);
    const result = await buildFunctionImage(parseFunction(fn), options({ catalog }));
    assert.is(result.cached, false, `${what}: a new image`);
    const computed = await functionImageTag(fn, { catalog: parseRuntimeCatalog(catalog), dockerConfig: parseDockerConfig(rig.dockerConfigJson), registries: rig.registries });
    assert.is(result.tag, computed, `${what}: the build's tag is functionImageTag()`);
    for (const [other, tag] of tags) assert.is.not(result.tag, tag, `${what} and ${other} must differ`);
    tags.set(what, result.tag);
  }
  assert.is(tags.size, Object.keys(variants).length);

  // ...and what does not change the image does not change the tag: namespace, uid, labels, env that is only the Deployment's.
  const same = functionObject('variant-fn', base);
  (same.metadata as Record<string, unknown>).namespace = 'elsewhere';
  (same.metadata as Record<string, unknown>).uid = 'ab9a1f48-6a41-4b55-a7c4-1e1c3c1d2f9e';
  (same.metadata as Record<string, unknown>).labels = { team: 'x' };
  const sameTag = await functionImageTag(same, { catalog: parseRuntimeCatalog(catalog), dockerConfig: parseDockerConfig(rig.dockerConfigJson) });
  assert.is(sameTag, tags.get('base'));
});

test('a url source with a checksum is identified without downloading it', async () => {
  const content = Buffer.from(fixture('nodejs/handler.js') + '\n// identified by checksum\n');
  const path = '/identify-only.js';
  const url = rig.files.put(path, content);
  const fn = functionObject('identify-only', { handler: 'handler.text', runtime: 'nodejs24', 'function-content-type': 'url', function: url, checksum: sha256(content) });
  await functionImageTag(fn, { catalog: parseRuntimeCatalog(rig.catalog), dockerConfig: parseDockerConfig(rig.dockerConfigJson) });
  assert.is(rig.files.hits.get(path) ?? 0, 0);
  const built = await buildFunctionImage(parseFunction(fn), options());
  assert.is(rig.files.hits.get(path), 1, 'downloaded once, to build');
  const again = await buildFunctionImage(parseFunction(fn), options());
  assert.is(again.cached, true);
  assert.is(again.digest, built.digest);
  assert.is(rig.files.hits.get(path), 1, 'not downloaded for the cached answer');
});

test('two builds of one new Function at once produce one image: one build, one push, one digest', async () => {
  const fn = () => functionObject('concurrent-fn', { handler: 'handler.text', runtime: 'nodejs24', function: fixture('nodejs/handler.js') + '\n// concurrent\n' });
  const events: BuildProgress[][] = [[], []];
  const [a, b] = await Promise.all(events.map((list) => buildFunctionImage(parseFunction(fn()), options({ onProgress: (e) => list.push(e) }))));
  assert.is(a!.tag, b!.tag);
  assert.is(a!.digest, b!.digest);
  assert.equal([a!.pushed, b!.pushed].sort(), [false, true], 'exactly one call pushed');
  assert.is(events.filter((list) => list.some((e) => e.kind === 'step')).length, 1, 'exactly one call ran a build');
  const answer = await callBuiltFunction(b!.reference, undefined, 'both');
  assert.ok(answer.status === 200, `the image answers: ${answer.status}`);
});

test.run();
