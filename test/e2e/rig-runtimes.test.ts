// The offline runtime images (fixtures/runtimes, test/support/runtime-images.ts): each runs fixture
// functions the way a kubelet runs a built function image and answers HTTP as the Kubeless runtime
// contract says; each installation image installs a deps file offline into /kubeless and the
// runtime then uses what it installed; the catalog pins the pushed images by digest.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import tar from 'tar-stream';
import { findRuntime, parseRuntimeCatalog } from '../../lib/runtime/catalog.ts';
import { docker, exec, TEST_LABEL } from '../support/docker.ts';
import { startFunctionContainer } from '../support/function-container.ts';
import { startRegistry } from '../support/registry.ts';
import {
  buildRuntimeImages,
  FUNCTION_RUNTIMES,
  pushRuntimeImages,
  releaseRuntimeImages,
  RUNTIME_DEFINITIONS,
  runtimeEnv,
  type LocalRuntimeImage,
  type RuntimeImageName,
  type RuntimeName,
} from '../support/runtime-images.ts';

const FUNCTIONS = resolve(import.meta.dirname, '..', '..', 'fixtures', 'functions', 'runtimes');

let images: Partial<Record<RuntimeImageName, LocalRuntimeImage>> = {};

function image(name: RuntimeImageName): string {
  const found = images[name];
  if (!found) throw new Error(`runtime image ${name} was not built`);
  return found.tag;
}

/** The env a built function image gives its container (kubeless-reference.md, "What the function image must be"). */
function functionEnv(runtime: RuntimeName, handler: string, extra: Record<string, string> = {}): Record<string, string> {
  const [module, fn] = handler.split('.') as [string, string];
  return {
    FUNC_HANDLER: fn,
    MOD_NAME: module,
    FUNC_TIMEOUT: '180',
    FUNC_RUNTIME: FUNCTION_RUNTIMES[runtime],
    FUNC_MEMORY_LIMIT: '0',
    FUNC_PORT: '8080',
    KUBELESS_INSTALL_VOLUME: '/kubeless',
    ...runtimeEnv(runtime),
    ...extra,
  };
}

/** A function container to start: its handler, extra env, and the port it listens on (default 8080). */
interface FunctionSetup {
  handler: string;
  env?: Record<string, string>;
  port?: number;
}

/** Starts one container per handler (in parallel), runs `body`, removes them all. */
async function withFunctions<K extends string>(
  imageName: RuntimeImageName,
  runtime: RuntimeName,
  files: string,
  handlers: Record<K, FunctionSetup>,
  body: (urls: Record<K, string>) => Promise<void>,
): Promise<void> {
  const started = await Promise.allSettled(
    (Object.entries(handlers) as [K, FunctionSetup][]).map(async ([key, { handler, env, port }]) => {
      const container = await startFunctionContainer(image(imageName), { files, env: functionEnv(runtime, handler, env), port });
      return [key, container] as const;
    }),
  );
  const containers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  try {
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    await body(Object.fromEntries(containers.map(([key, c]) => [key, c.url])) as Record<K, string>);
  } finally {
    await Promise.all(containers.map(([, c]) => c.stop()));
  }
}

async function call(url: string, init: RequestInit = {}): Promise<{ status: number; body: string; type: string | null }> {
  const response = await fetch(url, init);
  return { status: response.status, body: await response.text(), type: response.headers.get('content-type') };
}

/** A POST whose body has no length: sent with Transfer-Encoding: chunked. */
function chunked(parts: string[]): RequestInit {
  return { method: 'POST', body: new Blob(parts).stream(), duplex: 'half' } as RequestInit;
}

/** A tar of a fixture directory, entries owned by uid 1000 like the files of a function image. */
async function tarOf(dir: string): Promise<Buffer> {
  const pack = tar.pack();
  for (const name of readdirSync(dir).sort()) {
    pack.entry({ name, mode: 0o644, uid: 1000, gid: 1000, mtime: new Date(0) }, readFileSync(join(dir, name)));
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Puts the fixture's files into a fresh volume at /kubeless and runs the runtime's installation
 * command there with `sh -c`, as the build's dependency stage does. Returns the volume (the caller
 * removes it) and what the command printed.
 */
async function install(
  runtime: RuntimeName,
  files: string,
  env: Record<string, string>,
): Promise<{ volume: string; output: string; code: number }> {
  const volume = `fib-runtime-install-${randomBytes(5).toString('hex')}`;
  await docker(['volume', 'create', '--label', `${TEST_LABEL}=runtime-install`, volume]);
  const envArgs = Object.entries({ KUBELESS_INSTALL_VOLUME: '/kubeless', INSTALL_COMMAND: RUNTIME_DEFINITIONS[runtime].installCommand, ...env }).flatMap(
    ([k, v]) => ['--env', `${k}=${v}`],
  );
  const result = await exec(
    'docker',
    [
      'run', '--rm', '-i', '--label', `${TEST_LABEL}=runtime-install`, '--volume', `${volume}:/kubeless`, ...envArgs,
      image(`${runtime}-install`), 'sh', '-c', 'tar -x -C "$KUBELESS_INSTALL_VOLUME" && exec sh -c "$INSTALL_COMMAND"',
    ],
    { input: await tarOf(files), timeoutMs: 120_000 },
  );
  return { volume, output: result.stdout + result.stderr, code: result.code };
}

async function removeVolume(volume: string): Promise<void> {
  await exec('docker', ['volume', 'rm', '--force', volume]);
}

test.before(async () => {
  const started = performance.now();
  images = await buildRuntimeImages();
  const summary = Object.values(images)
    .map((i) => `${i.name} ${i.built ? `built in ${i.seconds.toFixed(1)} s` : 'cached'}`)
    .join(', ');
  console.log(`runtime images ready in ${((performance.now() - started) / 1000).toFixed(1)} s: ${summary}`);
});

// ---- nodejs ---------------------------------------------------------------------------------

test('nodejs runtime: /healthz, /metrics, event ids from headers, JSON and text bodies, context, string results', async () => {
  const files = join(FUNCTIONS, 'nodejs');
  await withFunctions('nodejs', 'nodejs', files, { echo: { handler: 'handler.echo', env: { FUNC_TIMEOUT: '7' } }, text: { handler: 'handler.text' } }, async (urls) => {
    const health = await call(`${urls.echo}/healthz`);
    assert.equal([health.status, health.body], [200, 'OK']);

    const json = await call(`${urls.echo}/some/path?q=1`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'event-id': 'id-123',
        'event-type': 'application/json',
        'event-time': '2024-01-01T00:00:00Z',
        'event-namespace': 'fixtures.example.com',
      },
      body: JSON.stringify({ hello: 'world', n: [1, 2] }),
    });
    assert.is(json.status, 200);
    assert.match(json.type ?? '', /application\/json/);
    const echoed = JSON.parse(json.body);
    assert.equal(echoed.data, { hello: 'world', n: [1, 2] });
    assert.is(echoed.dataType, 'object');
    assert.is(echoed.eventId, 'id-123');
    assert.is(echoed.eventType, 'application/json');
    assert.is(echoed.eventTime, '2024-01-01T00:00:00Z');
    assert.is(echoed.eventNamespace, 'fixtures.example.com');
    assert.is(echoed.method, 'POST');
    assert.is(echoed.url, '/some/path?q=1');
    assert.is(echoed.hasResponse, true);
    assert.equal(echoed.context, { 'function-name': 'echo', timeout: '7', runtime: 'nodejs24', 'memory-limit': '0' });

    // Not JSON: the body as text, even when it looks like JSON.
    const plain = JSON.parse((await call(urls.echo, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: '{"a":1}' })).body);
    assert.equal([plain.data, plain.dataType, plain.method], ['{"a":1}', 'string', 'PUT']);
    // GET on any other path calls the function too.
    assert.is(JSON.parse((await call(`${urls.echo}/healthzz`)).body).url, '/healthzz');

    const text = await call(urls.text, { method: 'POST', body: 'héllo' });
    assert.equal([text.status, text.body], [200, 'got 5 characters: héllo']);
    assert.is((await call(urls.text, chunked(['ab', 'cd']))).body, 'got 4 characters: abcd');

    const metrics = await call(`${urls.echo}/metrics`);
    assert.is(metrics.status, 200);
    assert.match(metrics.type ?? '', /^text\/plain/);
    assert.match(metrics.body, /# TYPE function_calls_total counter/);
    assert.match(metrics.body, /function_calls_total\{method="POST"\} 1\n/);
    assert.match(metrics.body, /function_calls_total\{method="PUT"\} 1\n/);
    assert.match(metrics.body, /function_duration_seconds_count\{method="GET"\} 1\n/);
  });
});

test('nodejs runtime: promises awaited, 408 past FUNC_TIMEOUT (async and busy loop), 500 on a thrown error', async () => {
  const files = join(FUNCTIONS, 'nodejs');
  const quick = { FUNC_TIMEOUT: '1' };
  await withFunctions(
    'nodejs',
    'nodejs',
    files,
    {
      later: { handler: 'handler.later' },
      slow: { handler: 'handler.slow', env: quick },
      busy: { handler: 'handler.busy', env: quick },
      fail: { handler: 'handler.fail' },
      failLater: { handler: 'handler.failLater' },
    },
    async (urls) => {
      const later = await call(urls.later, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1]' });
      assert.equal([later.status, JSON.parse(later.body)], [200, { awaited: true, data: [1] }]);

      let started = Date.now();
      const slow = await call(urls.slow);
      assert.is(slow.status, 408);
      assert.ok(Date.now() - started < 4_000, `408 came after ${Date.now() - started} ms, not at the 1 s timeout`);

      started = Date.now();
      const busy = await call(urls.busy);
      assert.is(busy.status, 408);
      assert.ok(Date.now() - started < 4_000, `408 came after ${Date.now() - started} ms`);
      // The server survived the interrupted busy loop.
      assert.is((await call(`${urls.busy}/healthz`)).status, 200);

      assert.is((await call(urls.fail)).status, 500);
      assert.is((await call(urls.failLater, { method: 'POST', body: 'x' })).status, 500);
      assert.match((await call(`${urls.fail}/metrics`)).body, /function_failures_total\{method="GET"\} 1\n/);
    },
  );
});

test('nodejs runtime: module.exports = fn, NODE_PATH honoured, runs as uid 1000; a missing handler fails the start', async () => {
  const files = join(FUNCTIONS, 'nodejs');
  await withFunctions(
    'nodejs',
    'nodejs',
    files,
    {
      single: { handler: 'single.anything' },
      nodePath: { handler: 'handler.nodePath', env: { NODE_PATH: '/kubeless/vendor' } },
      whoami: { handler: 'handler.whoami' },
    },
    async (urls) => {
      assert.is((await call(urls.single, { method: 'POST', body: 'x' })).body, 'single export got x');
      assert.is((await call(urls.nodePath)).body, 'found through NODE_PATH');
      assert.equal(JSON.parse((await call(urls.whoami)).body), { uid: 1000, gid: 1000 });
    },
  );
  await startFunctionContainer(image('nodejs'), { files, env: functionEnv('nodejs', 'handler.nope'), readyTimeoutMs: 5_000 }).then(
    async (c) => {
      await c.stop();
      assert.unreachable('a handler that does not exist must not start');
    },
    (error: Error) => assert.match(error.message, /exports neither a function nor a function named "nope"/),
  );
});

test('nodejs runtime: listens on FUNC_PORT when it is not 8080', async () => {
  await withFunctions('nodejs', 'nodejs', join(FUNCTIONS, 'nodejs'), { text: { handler: 'handler.text', env: { FUNC_PORT: '9090' }, port: 9090 } }, async (urls) => {
    const health = await call(`${urls.text}/healthz`);
    assert.equal([health.status, health.body], [200, 'OK']);
    assert.is((await call(urls.text, { method: 'POST', body: 'on 9090' })).body, 'got 7 characters: on 9090');
  });
});

test('nodejs installation image: installs package.json offline into /kubeless with the function env; the runtime uses it', async () => {
  const files = join(FUNCTIONS, 'nodejs-deps');
  const { volume, output, code } = await install('nodejs', files, {
    KUBELESS_DEPS_FILE: '/kubeless/package.json',
    NPM_REGISTRY: 'http://npm.registry.invalid/',
  });
  try {
    assert.is(code, 0, output);
    assert.match(output, /kubeless-npm-install: registry http:\/\/npm\.registry\.invalid\//);
    assert.match(output, /added 1 package/);
    const listing = (await docker(['run', '--rm', '--label', `${TEST_LABEL}=runtime-install`, '--volume', `${volume}:/kubeless`, image('nodejs'), 'ls', '/kubeless/node_modules'])).trim();
    assert.is(listing, 'fib-greeting');

    const container = await startFunctionContainer(image('nodejs'), { volume, env: functionEnv('nodejs', 'handler.hello') });
    try {
      assert.is((await call(container.url, { method: 'POST', body: 'world' })).body, 'hello world, from fib-greeting 1.0.0');
    } finally {
      await container.stop();
    }
  } finally {
    await removeVolume(volume);
  }
});

test('nodejs installation image: deps file elsewhere is copied as package.json; NPM_SCOPE and NPM_CONFIG_EXTRA; no password printed', async () => {
  const files = join(FUNCTIONS, 'nodejs-deps');
  const { volume, output, code } = await install('nodejs', files, {
    KUBELESS_DEPS_FILE: '/tmp/deps.json',
    INSTALL_COMMAND: `cp /kubeless/package.json /tmp/deps.json && rm /kubeless/package.json && ${RUNTIME_DEFINITIONS.nodejs.installCommand}`,
    NPM_REGISTRY: 'http://someone:s3cr3t-value@npm.scoped.invalid/',
    NPM_SCOPE: '@fixtures',
    NPM_CONFIG_EXTRA: 'maxsockets=3 fetch-retries=0',
  });
  try {
    assert.is(code, 0, output);
    assert.match(output, /kubeless-npm-install: registry https:\/\/registry\.npmjs\.org\//);
    assert.match(output, /kubeless-npm-install: @fixtures registry http:\/\/\*\*\*@npm\.scoped\.invalid\//);
    assert.not.match(output, /s3cr3t/);
    const check = await docker([
      'run', '--rm', '--label', `${TEST_LABEL}=runtime-install`, '--volume', `${volume}:/kubeless`, image('nodejs'),
      'sh', '-c', 'cat /kubeless/package.json && ls /kubeless/node_modules',
    ]);
    assert.match(check, /"fib-greeting": "file:\/offline-packages\/fib-greeting-1\.0\.0\.tgz"/);
    assert.match(check, /\nfib-greeting\n/);
  } finally {
    await removeVolume(volume);
  }
});

// ---- python ---------------------------------------------------------------------------------

test('python runtime: /healthz, /metrics, event ids, JSON and text bodies, request and response, context, 408, 500, uid 1000', async () => {
  const files = join(FUNCTIONS, 'python');
  await withFunctions(
    'python',
    'python',
    files,
    {
      echo: { handler: 'handler.echo', env: { FUNC_TIMEOUT: '7' } },
      text: { handler: 'handler.text' },
      slow: { handler: 'handler.slow', env: { FUNC_TIMEOUT: '1' } },
      fail: { handler: 'handler.fail' },
      whoami: { handler: 'handler.whoami' },
      respond: { handler: 'handler.respond' },
    },
    async (urls) => {
      const health = await call(`${urls.echo}/healthz`);
      assert.equal([health.status, health.body], [200, 'OK']);

      const json = await call(`${urls.echo}/p?x=1`, {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8', 'event-id': 'py-1', 'event-type': 'fixture', 'event-time': 't0', 'event-namespace': 'ns' },
        body: JSON.stringify({ hello: 'world' }),
      });
      assert.is(json.status, 200);
      assert.match(json.type ?? '', /application\/json/);
      const echoed = JSON.parse(json.body);
      assert.equal(echoed.data, { hello: 'world' });
      assert.is(echoed.dataType, 'dict');
      assert.equal([echoed.eventId, echoed.eventType, echoed.eventTime, echoed.eventNamespace], ['py-1', 'fixture', 't0', 'ns']);
      assert.equal([echoed.method, echoed.url], ['POST', '/p?x=1']);
      assert.is(echoed.hasResponse, true);
      assert.equal(echoed.context, { 'function-name': 'echo', timeout: '7', runtime: 'python3.11', 'memory-limit': '0' });

      const plain = JSON.parse((await call(urls.echo, { method: 'PATCH', body: '{"a":1}' })).body);
      assert.equal([plain.data, plain.dataType, plain.method], ['{"a":1}', 'str', 'PATCH']);

      const text = await call(urls.text, { method: 'POST', body: 'héllo' });
      assert.equal([text.status, text.body], [200, 'got 5 characters: héllo']);
      assert.is((await call(urls.text, chunked(['ab', 'cd']))).body, 'got 4 characters: abcd');

      const started = Date.now();
      assert.is((await call(urls.slow)).status, 408);
      assert.ok(Date.now() - started < 4_000, `408 came after ${Date.now() - started} ms`);
      assert.is((await call(`${urls.slow}/healthz`)).status, 200);

      assert.is((await call(urls.fail)).status, 500);
      assert.equal(JSON.parse((await call(urls.whoami)).body), { uid: 1000, gid: 1000 });

      // What the function sets on event.extensions.response is what the caller gets.
      const responded = await fetch(urls.respond, { method: 'POST', body: 'x' });
      assert.equal(
        [responded.status, responded.headers.get('x-fixture'), responded.headers.get('content-type'), await responded.text()],
        [201, 'set by the function', 'text/x-fixture', 'created'],
      );

      const metrics = await call(`${urls.echo}/metrics`);
      assert.is(metrics.status, 200);
      assert.match(metrics.body, /function_calls_total\{method="POST"\} 1\n/);
      assert.match(metrics.body, /function_calls_total\{method="PATCH"\} 1\n/);
      assert.match((await call(`${urls.fail}/metrics`)).body, /function_failures_total\{method="GET"\} 1\n/);
    },
  );
  await startFunctionContainer(image('python'), { files, env: functionEnv('python', 'handler.nope'), readyTimeoutMs: 5_000 }).then(
    async (c) => {
      await c.stop();
      assert.unreachable('a handler that does not exist must not start');
    },
    (error: Error) => assert.match(error.message, /has no function named 'nope'/),
  );
});

test('python runtime: listens on FUNC_PORT when it is not 8080', async () => {
  await withFunctions('python', 'python', join(FUNCTIONS, 'python'), { text: { handler: 'handler.text', env: { FUNC_PORT: '9090' }, port: 9090 } }, async (urls) => {
    const health = await call(`${urls.text}/healthz`);
    assert.equal([health.status, health.body], [200, 'OK']);
    assert.is((await call(urls.text, { method: 'POST', body: 'on 9090' })).body, 'got 7 characters: on 9090');
  });
});

test('python installation image: pip installs requirements.txt offline into /kubeless; the runtime imports it via PYTHONPATH', async () => {
  const files = join(FUNCTIONS, 'python-deps');
  const { volume, output, code } = await install('python', files, { KUBELESS_DEPS_FILE: '/kubeless/requirements.txt' });
  try {
    assert.is(code, 0, output);
    assert.match(output, /Successfully installed fib-greeting-1\.0\.0/);
    const container = await startFunctionContainer(image('python'), { volume, env: functionEnv('python', 'handler.hello') });
    try {
      assert.is((await call(container.url, { method: 'POST', body: 'world' })).body, 'hello world, from fib-greeting 1.0.0');
    } finally {
      await container.stop();
    }
  } finally {
    await removeVolume(volume);
  }
});

// ---- the catalog ----------------------------------------------------------------------------

test('runtimeCatalogFor pushes the images to a registry and pins them by digest in Kubeless runtime-images format', async () => {
  const registry = await startRegistry('anonymous');
  try {
    const pushed = await pushRuntimeImages(registry);
    console.log(`runtime images pushed in ${pushed.seconds.push.toFixed(1)} s`);
    const parsed = parseRuntimeCatalog(JSON.stringify(pushed.catalog));
    const node = findRuntime(parsed, 'nodejs24');
    const python = findRuntime(parsed, 'python3.11');
    assert.equal([node.depName, node.fileNameSuffix, python.depName, python.fileNameSuffix], ['package.json', '.js', 'requirements.txt', '.py']);
    assert.is(node.phases.installation?.command, '/kubeless-npm-install.sh');
    assert.equal(node.phases.runtime.env, { NODE_PATH: '$(KUBELESS_INSTALL_VOLUME)/node_modules' });
    assert.is(python.phases.installation?.command, 'pip install --prefix=$KUBELESS_INSTALL_VOLUME -r $KUBELESS_DEPS_FILE');
    assert.match(python.phases.runtime.env.PYTHONPATH ?? '', /^\$\(KUBELESS_INSTALL_VOLUME\)\/local\/lib\/python3\.11\/dist-packages:/);

    for (const [phase, name] of [
      [node.phases.runtime, 'nodejs'],
      [node.phases.installation, 'nodejs-install'],
      [python.phases.runtime, 'python'],
      [python.phases.installation, 'python-install'],
    ] as const) {
      const pushedImage = pushed.images[name];
      assert.ok(pushedImage && phase, name);
      assert.is(phase.image, `${registry.host}/kubeless/${name}@${pushedImage.digest}`);
      // The registry serves that very manifest under the tag that was pushed.
      const response = await fetch(`${registry.url}/v2/kubeless/${name}/manifests/${pushedImage.tag}`, {
        method: 'HEAD',
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      });
      assert.is(response.status, 200, name);
      assert.is(response.headers.get('docker-content-digest'), pushedImage.digest, name);
    }
    // A second call reuses the push; nothing is left tagged <host>/... locally.
    assert.equal(await pushRuntimeImages(registry), pushed);
    const local = await docker(['images', '--format', '{{.Repository}}:{{.Tag}}', `${registry.host}/kubeless/*`]);
    assert.is(local.trim(), '');
    // What the docker pipeline does with it: pull by digest works.
    await docker(['pull', node.phases.runtime.image]);
  } finally {
    await releaseRuntimeImages(registry);
    await registry.stop();
  }
  const after = await docker(['images', '--digests', '--format', '{{.Repository}}@{{.Digest}}', `${registry.host}/kubeless/*`]);
  assert.is(after.trim(), '');
});

test.run();
