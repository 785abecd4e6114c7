import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extract as tarExtract } from 'tar-stream';
import { BuilderError } from '../../lib/errors.ts';
import { CONTEXT_MTIME, createBuildContext, type BuildContextOptions } from '../../lib/image/context.ts';
import { quoteDockerfileValue } from '../../lib/image/dockerfile.ts';
import { resolveBuildPlan } from '../../lib/image/plan.ts';
import { parseRuntimeCatalog } from '../../lib/runtime/catalog.ts';
import { gzip, makeTar } from '../support/archives.ts';

type Json = Record<string, any>;
const DIGEST = (c: string) => `sha256:${c.repeat(64)}`;

function catalog(change: (c: Json[]) => void = () => {}) {
  const c: Json[] = [
    { ID: 'nodejs', depName: 'package.json', fileNameSuffix: '.js', versions: [{ name: 'node14', version: '14', images: [
      { phase: 'installation', image: `registry.test/install@${DIGEST('a')}`, command: '/kubeless-npm-install.sh' },
      { phase: 'runtime', image: `registry.test/runtime@${DIGEST('b')}`, env: { NODE_PATH: '$(KUBELESS_INSTALL_VOLUME)/node_modules' } }] }] },
    { ID: 'go', depName: 'go.mod', fileNameSuffix: '.go', versions: [{ name: 'go1.14', version: '1.14', images: [
      { phase: 'compilation', image: `registry.test/go-init@${DIGEST('c')}`, command: '/compile-function.sh' },
      { phase: 'runtime', image: `registry.test/go@${DIGEST('d')}` }] }] },
  ];
  change(c);
  return parseRuntimeCatalog(c);
}

function fn(change: (f: Json) => void = () => {}): Json {
  const f: Json = {
    apiVersion: 'kubeless.io/v1beta1', kind: 'Function', metadata: { name: 'hello', namespace: 'default' },
    spec: {
      handler: 'handler.hello', runtime: 'nodejs14', function: 'module.exports = {}', deps: '{"dependencies":{}}',
      deployment: { spec: { template: { spec: { containers: [{ env: [{ name: 'NPM_REGISTRY', value: 'http://npm.test/' }] }] } } } },
    },
  };
  change(f);
  return f;
}

// Extra labels belong to the plan (they are part of the tag); the rest goes to createBuildContext.
async function context(f: Json, { labels, ...options }: BuildContextOptions & { labels?: Record<string, string> } = {}, c = catalog()) {
  return createBuildContext(await resolveBuildPlan(f, { catalog: c, ...(labels === undefined ? {} : { labels }) }), options);
}

interface TarEntry { name: string; type: string; mode: number; uid: number; gid: number; mtime: number; content: string; linkname: string }

async function readTar(tar: Buffer): Promise<TarEntry[]> {
  const extract = tarExtract();
  extract.end(tar);
  const entries: TarEntry[] = [];
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    const h = entry.header;
    entries.push({ name: h.name, type: h.type, mode: h.mode, uid: h.uid, gid: h.gid, mtime: h.mtime.getTime(), content: Buffer.concat(chunks).toString(), linkname: h.linkname ?? '' });
  }
  return entries;
}

/** Dockerfile instructions as the parser sees them: continuation lines joined, comments and blanks dropped. */
function instructions(dockerfile: string): string[] {
  return dockerfile.replace(/\\\n/g, '').split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'));
}
const keywords = (dockerfile: string) => instructions(dockerfile).map((line) => line.split(' ')[0]);

test('identical inputs give a byte-identical tar: sorted entries, fixed mtime, owner 0, normalised modes', async () => {
  const archive = gzip(await makeTar([
    { name: 'handler.js', content: 'module.exports = {}', mode: 0o600 },
    { name: 'bin/run', content: '#!/bin/sh', mode: 0o700 },
    { name: 'current.js', type: 'symlink', linkname: 'handler.js' },
  ]));
  const archiveFn = fn((f) => { f.spec['function-content-type'] = 'base64+compressedtar'; f.spec.function = archive.toString('base64'); });
  const first = await context(archiveFn);
  const second = await context(structuredClone(archiveFn));
  assert.ok(first.tar.equals(second.tar), 'same bytes');
  const entries = await readTar(first.tar);
  assert.equal(entries.map((e) => `${e.name} ${e.type} ${e.mode.toString(8)}`), [
    'Dockerfile file 644',
    'deps directory 755',
    'deps/package.json file 644',
    'function directory 755',
    'function/bin directory 755',
    'function/bin/run file 755',
    'function/current.js symlink 777',
    'function/handler.js file 644',
    'step-env directory 755',
    'step-env/installation.sh file 644',
    'volume directory 755',
    'volume/final directory 755',
    'volume/final/kubeless directory 755',
    'volume/step directory 755',
    'volume/step/kubeless directory 777',
  ]);
  for (const entry of entries) {
    assert.is(entry.uid, 0);
    assert.is(entry.gid, 0);
    assert.is(entry.mtime, CONTEXT_MTIME.getTime());
  }
  assert.is(entries.find((e) => e.name === 'function/current.js')?.linkname, 'handler.js');
  assert.is(entries.find((e) => e.name === 'Dockerfile')?.content, first.dockerfile);
  assert.is(entries.find((e) => e.name === 'deps/package.json')?.content, '{"dependencies":{}}');
  const changed = await context(fn((f) => { f.spec.function = 'module.exports = { }'; }));
  assert.not.ok(changed.tar.equals((await context(fn())).tar));
});

test('with deps: the deps stage copies only the deps file and installs before any code is copied', async () => {
  const { dockerfile, tag, tar } = await context(fn());
  const lines = instructions(dockerfile);
  assert.equal(keywords(dockerfile), ['FROM', 'COPY', 'COPY', 'COPY', 'WORKDIR', 'RUN', 'FROM', 'ENV', 'COPY', 'COPY', 'COPY', 'LABEL']);
  assert.is(lines[0], `FROM registry.test/install@${DIGEST('a')} AS deps`);
  // A /kubeless any USER may write, whoever owns the image's own.
  assert.is(lines[1], 'COPY --chown=1000:1000 ["volume/step/","/"]');
  assert.is(lines[2], 'COPY ["step-env/installation.sh","/.function-image-builder/installation.sh"]');
  assert.is(lines[3], 'COPY --chown=1000:1000 ["deps/package.json","/kubeless/package.json"]');
  assert.is(lines[4], 'WORKDIR /kubeless');
  // The step's env is in the script, never in the instruction (the image history).
  assert.equal(JSON.parse(lines[5]!.slice('RUN '.length)), ['sh', '/.function-image-builder/installation.sh', 'sh', '-c', '/kubeless-npm-install.sh']);
  assert.not.match(dockerfile, 'npm.test');
  assert.is(lines[6], `FROM registry.test/runtime@${DIGEST('b')}`);
  assert.is(lines[7], 'ENV NODE_PATH="/kubeless/node_modules"     FUNC_HANDLER="hello"     MOD_NAME="handler"     FUNC_TIMEOUT="180"     FUNC_RUNTIME="nodejs14"     FUNC_MEMORY_LIMIT="0"     FUNC_PORT="8080"     KUBELESS_INSTALL_VOLUME="/kubeless"');
  assert.is(lines[8], 'COPY --chown=1000:1000 ["volume/final/","/"]');
  assert.is(lines[9], 'COPY --from=deps --chown=1000:1000 ["/kubeless","/kubeless"]');
  assert.is(lines[10], 'COPY --chown=1000:1000 ["function/","/kubeless/"]');
  for (const label of ['"org.opencontainers.image.title"="hello"', `"io.kubeless.function.tag"="${tag}"`, '"io.kubeless.function"="hello"', '"io.kubeless.function.runtime"="nodejs14"', '"io.kubeless.function.handler"="handler.hello"']) {
    assert.ok(lines[11]!.includes(label), label);
  }
  const script = (await readTar(tar)).find((e) => e.name === 'step-env/installation.sh')?.content;
  assert.match(String(script), `exec env -- 'NPM_REGISTRY=http://npm.test/' \\\n  'KUBELESS_INSTALL_VOLUME=/kubeless' \\\n  'KUBELESS_DEPS_FILE=/kubeless/package.json' "$@"`);
  assert.not.match(dockerfile, /USER|ENTRYPOINT|CMD|syntax=|--mount|<</);
});

test('without deps there is no dependency stage', async () => {
  const { dockerfile, tar } = await context(fn((f) => { delete f.spec.deps; }));
  assert.equal(keywords(dockerfile), ['FROM', 'ENV', 'COPY', 'COPY', 'LABEL']);
  assert.not.match(dockerfile, /AS deps|^RUN/m);
  assert.not.ok((await readTar(tar)).some((e) => e.name.startsWith('deps') || e.name.startsWith('step-env') || e.name.startsWith('volume/step')));
});

test('a compilation phase gets deps and code, KUBELESS_FUNC_NAME, and the final stage takes its /kubeless', async () => {
  const { dockerfile, tar } = await context(fn((f) => { f.spec.runtime = 'go1.14'; f.spec.handler = 'handler.Hello'; f.spec.deps = 'module hello\n'; }));
  assert.equal(keywords(dockerfile), ['FROM', 'COPY', 'COPY', 'COPY', 'WORKDIR', 'RUN', 'FROM', 'ENV', 'COPY', 'COPY', 'LABEL']);
  const lines = instructions(dockerfile);
  assert.is(lines[0], `FROM registry.test/go-init@${DIGEST('c')} AS compile`);
  assert.is(lines[1], 'COPY --chown=1000:1000 ["volume/step/","/"]');
  assert.equal(JSON.parse(lines[5]!.slice('RUN '.length)), ['sh', '/.function-image-builder/compilation.sh', 'sh', '-c', '/compile-function.sh']);
  assert.match(String((await readTar(tar)).find((e) => e.name === 'step-env/compilation.sh')?.content), `'KUBELESS_FUNC_NAME=Hello' "$@"`);
  assert.is(lines[8], 'COPY --chown=1000:1000 ["volume/final/","/"]');
  assert.is(lines[9], 'COPY --from=compile --chown=1000:1000 ["/kubeless","/kubeless"]');
  // No installation phase: the deps file travels with the code.
  assert.ok((await readTar(tar)).some((e) => e.name === 'function/go.mod'));
});

test('hostile values stay inert: every one lands inside one JSON string or one quoted word', async () => {
  const hostileEnv = 'x"\nRUN touch /pwned\n# \\\n\\';
  const hostileCommand = 'echo ok\nRUN touch /pwned \\\nUSER root';
  const runtimeEnv = 'a" \\ $HOME ${HOME} `id` \' \\';
  const c = catalog((entries) => {
    entries[0]!.versions[0].images[0].command = hostileCommand;
    entries[0]!.versions[0].images[1].env = { EVIL: runtimeEnv };
  });
  const f = fn((f) => { f.spec.deployment.spec.template.spec.containers[0].env = [{ name: 'EVIL', value: hostileEnv }, { name: 'A.B-c', value: '$(KUBELESS_INSTALL_VOLUME)' }]; });
  const { dockerfile, tar } = await context(f, { labels: { 'x.test/note': 'say "hi" $USER \\' } }, c);
  assert.equal(keywords(dockerfile), ['FROM', 'COPY', 'COPY', 'COPY', 'WORKDIR', 'RUN', 'FROM', 'ENV', 'COPY', 'COPY', 'COPY', 'LABEL']);
  const lines = instructions(dockerfile);
  const run = JSON.parse(lines[5]!.slice('RUN '.length)) as string[];
  assert.is(run.at(-1), hostileCommand);
  assert.ok(lines[7]!.startsWith(`ENV EVIL=${quoteDockerfileValue(runtimeEnv, 'x')} `));
  // The env script, run by a real shell, hands the command every value exactly as given.
  const script = String((await readTar(tar)).find((e) => e.name === 'step-env/installation.sh')?.content);
  const dir = mkdtempSync(join(tmpdir(), 'fib-step-env-'));
  try {
    writeFileSync(join(dir, 'installation.sh'), script);
    const printed = execFileSync('sh', [join(dir, 'installation.sh'), 'sh', '-c', 'printf %s "$EVIL"; printf "\\n%s" "$KUBELESS_DEPS_FILE"'], { encoding: 'utf8', env: {} });
    assert.is(printed, `${hostileEnv}\n/kubeless/package.json`);
    assert.match(script, `'A.B-c=/kubeless'`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.ok(dockerfile.includes('"x.test/note"="say \\"hi\\" \\$USER \\\\"'));
  assert.not.match(dockerfile, /^(RUN touch|USER)/m);
});

test('values no Dockerfile can carry are refused, not mangled', async () => {
  const code = async (promise: Promise<unknown>) => promise.then(() => 'ok', (error: BuilderError) => error.code);
  assert.is(await code(context(fn(), { labels: { note: 'two\nlines' } })), 'E_DOCKERFILE_VALUE');
  assert.is(await code(context(fn(), { labels: { 'bad key\nRUN x': 'v' } })), 'E_DOCKERFILE_VALUE');
  assert.throws(() => quoteDockerfileValue('a\rb', 'x'), /line break/);
  assert.is(quoteDockerfileValue('say "$x" \\', 'x'), '"say \\"\\$x\\" \\\\"');
});

test('an aborted signal stops the context before any work', async () => {
  const plan = await resolveBuildPlan(fn(), { catalog: catalog() });
  const controller = new AbortController();
  controller.abort();
  await createBuildContext(plan, { signal: controller.signal }).then(() => assert.unreachable(), (error: Error) => assert.is(error.name, 'AbortError'));
});

test.run();
