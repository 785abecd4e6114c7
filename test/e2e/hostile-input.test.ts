// Hostile input, as an attacker or a careless user would give it (issues 11.6 and 12.1, 12.5, 12.7):
// url sources aimed at the node's own services, the cloud metadata endpoint or private networks,
// directly or through redirects; YAML alias bombs; oversized and over-nested Functions; archives of
// 100 000 entries or 5 000 directories deep; names and namespaces at and past their limits. Each
// must end in a typed error (CLI exit 2 or 3, never 1) or a success, within the memory a Job has
// (1 GiB), having fetched nothing it should not and left no tag, container or temp file.
//
// The CLI runs in a child process with DOCKER_HOST on a closed port: an input refused before the
// daemon is contacted exits 2 with its own code, while any attempt to build would end in
// E_DOCKER_UNAVAILABLE (exit 3), so no container or local image can have been made.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { parseFunction } from '../../lib/function/parse.ts';
import { materialiseSources, type SourceOptions } from '../../lib/function/source.ts';
import { gzip, makeTar, makeZip } from '../support/archives.ts';
import { exec, type RunResult } from '../support/docker.ts';
import { rejectsWith } from '../support/errors.ts';
import { freePort } from '../support/net.ts';
import { functionObject, registryTags } from '../support/pipeline.ts';
import { startRegistry, type RegistryHandle } from '../support/registry.ts';

const CLI = join(import.meta.dirname, '..', '..', 'cli', 'main.ts');
const NODE: SourceOptions = { depName: 'package.json', fileNameSuffix: '.js' };
const MB = 1024 * 1024;
/** What the build Job's container may use (lib/kubernetes/config.ts DEFAULT_JOB_SETTINGS). */
const JOB_MEMORY_LIMIT_MB = 1024;

let dir: string;
let registry: RegistryHandle;
let closedDocker: string;

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fib-hostile-input-'));
  registry = await startRegistry('anonymous');
  closedDocker = `tcp://127.0.0.1:${await freePort()}`;
});

test.after(async () => {
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface CliRun extends RunResult {
  peakRssMb: number;
  /** What the run left in its own TMPDIR. */
  leftInTmp: string[];
}

/** The CLI in a child process, its peak RSS measured by /usr/bin/time, with a TMPDIR of its own. */
async function cli(args: string[], options: { input?: string | Buffer; env?: Record<string, string> } = {}): Promise<CliRun> {
  const tmp = mkdtempSync(join(dir, 'tmp-'));
  const rusage = join(tmp, '..', `${tmp.split('/').pop()}.rusage`);
  const run = await exec('/usr/bin/time', ['-o', rusage, '-f', '%M', process.execPath, CLI, ...args], {
    input: options.input,
    env: { PATH: process.env.PATH ?? '', HOME: dir, TMPDIR: tmp, DOCKER_HOST: closedDocker, ...options.env },
    timeoutMs: 120_000,
  });
  const peakRssMb = Number(readFileSync(rusage, 'utf8').trim().split('\n').pop()) / 1024;
  const leftInTmp = readdirSync(tmp);
  rmSync(tmp, { recursive: true, force: true });
  rmSync(rusage, { force: true });
  return { ...run, peakRssMb, leftInTmp };
}

/** A typed refusal: exit 2, `E_CODE` on stderr, no internal error, within the Job's memory, nothing left. */
function assertRefused(run: CliRun, code: string, exitCode = 2): void {
  assert.is(run.code, exitCode, run.stderr);
  assert.match(run.stderr, `function-image-builder: ${code}: `);
  assert.not.match(run.stderr, 'internal error');
  assert.ok(run.peakRssMb < JOB_MEMORY_LIMIT_MB, `peak RSS ${run.peakRssMb.toFixed(0)} MB`);
  assert.equal(run.leftInTmp, []);
}

function writeInput(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

const fnYaml = (name: string, spec: Record<string, unknown>) => stringify(functionObject(name, { handler: 'handler.hello', runtime: 'nodejs14', ...spec }));

// ---------------------------------------------------------------------------------------------
// url sources (SSRF)

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

interface TestServer {
  url: string;
  port: number;
  hits: string[];
  close(): Promise<void>;
}

async function serve(host: string, handler: Handler, port = 0): Promise<TestServer> {
  const hits: string[] = [];
  const server: Server = createServer((request, response) => {
    hits.push(request.url ?? '');
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${bound}`,
    port: bound,
    hits,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const urlSpec = (url: string) => parseFunction(functionObject('fetch', { handler: 'handler.hello', runtime: 'nodejs14', 'function-content-type': 'url', function: url }));

test('url sources on loopback, link-local, private, shared, unspecified and IPv4-mapped addresses are refused before any request', async () => {
  const loopback = await serve('127.0.0.1', (_request, response) => response.end('module.exports = {}'));
  try {
    const port = loopback.port;
    const cases: [string, RegExp][] = [
      [`${loopback.url}/f.js`, /127\.0\.0\.1, which is not a public address \(loopback\)/],
      [`http://localhost:${port}/f.js`, /leads to (127\.0\.0\.1|::1) \(localhost\), which is not a public address \(loopback\)/],
      [`http://[::1]:${port}/f.js`, /::1, which is not a public address \(loopback\)/],
      ['http://169.254.169.254/latest/meta-data/', /169\.254\.169\.254, which is not a public address \(link-local/],
      ['http://[fd00:ec2::254]/latest/meta-data/', /unique local/],
      ['http://[fe80::1]/', /link-local/],
      ['http://10.0.0.1/f.js', /private \(RFC 1918\)/],
      ['http://172.16.5.4/f.js', /private \(RFC 1918\)/],
      ['http://192.168.1.1/f.js', /private \(RFC 1918\)/],
      ['http://100.64.0.1/f.js', /carrier-grade NAT/],
      [`http://0.0.0.0:${port}/f.js`, /unspecified/],
      [`http://[::]:${port}/f.js`, /unspecified/],
      [`http://[::ffff:127.0.0.1]:${port}/f.js`, /::ffff:7f00:1, which is not a public address \(loopback\)/],
      [`http://[::ffff:169.254.169.254]/`, /link-local/],
      [`http://2130706433:${port}/f.js`, /127\.0\.0\.1/],
    ];
    for (const [url, reason] of cases) {
      const error = await rejectsWith(materialiseSources(urlSpec(url), NODE), 'E_SOURCE_URL_REFUSED');
      assert.is(error.kind, 'user');
      assert.match(error.message, /^function default\/fetch: spec\.function: /);
      assert.match(error.message, reason, url);
      assert.match(error.message, '--allow-private-addresses');
      assert.is(error.details.field, 'spec.function');
    }
    assert.equal(loopback.hits, [], 'no request reached the loopback server');

    // The explicit allowance is what lets a developer fetch from their own machine.
    const allowed = await materialiseSources(urlSpec(`${loopback.url}/f.js`), { ...NODE, download: { allowPrivateAddresses: true } });
    assert.is(allowed.files[0]?.content.toString(), 'module.exports = {}');
    assert.equal(loopback.hits, ['/f.js']);
  } finally {
    await loopback.close();
  }
});

test('every redirect hop is checked: from an allowed host to loopback, to the metadata endpoint by name, to another scheme', async () => {
  // 127.0.0.2 stands in for a public file server: only it is allowed, and a fake resolver gives
  // "files.example.test" its address. 127.0.0.1 is the node's own loopback service.
  const internal = await serve('127.0.0.1', (_request, response) => response.end('internal secret'));
  const files = await serve('127.0.0.2', (request, response) => {
    const target: Record<string, string> = {
      '/to-loopback': `${internal.url}/secret`,
      '/to-localhost': `http://localhost:${internal.port}/secret`,
      '/to-metadata': 'http://metadata.example.test/computeMetadata/v1/',
      '/to-file': 'file:///etc/passwd',
      '/to-gopher': 'gopher://127.0.0.1:70/',
      '/to-self': '/handler.js',
    };
    const location = target[request.url ?? ''];
    if (location !== undefined) response.writeHead(302, { location }).end();
    else response.end('module.exports = { hello: () => "hi" }');
  });
  const names: Record<string, string[]> = { 'files.example.test': ['127.0.0.2'], 'metadata.example.test': ['169.254.169.254'] };
  const download = {
    allowPrivateAddresses: ['127.0.0.2/32'],
    resolve: async (hostname: string) => names[hostname] ?? (await import('node:dns/promises')).lookup(hostname, { all: true }).then((all) => all.map((entry) => entry.address)),
  };
  const from = (path: string) => urlSpec(`http://files.example.test:${files.port}${path}`);
  try {
    // Control: the allowed host itself, and a redirect that stays on it, are fetched.
    const ok = await materialiseSources(from('/to-self'), { ...NODE, download });
    assert.is(ok.files[0]?.content.toString(), 'module.exports = { hello: () => "hi" }');

    const loopback = await rejectsWith(materialiseSources(from('/to-loopback'), { ...NODE, download }), 'E_SOURCE_URL_REFUSED');
    assert.match(loopback.message, `redirect 1 (to ${internal.url}/secret) leads to 127.0.0.1, which is not a public address (loopback)`);
    assert.is(loopback.details.redirects, 1);
    const localhost = await rejectsWith(materialiseSources(from('/to-localhost'), { ...NODE, download }), 'E_SOURCE_URL_REFUSED');
    assert.match(localhost.message, /\(localhost\), which is not a public address \(loopback\)/);
    const metadata = await rejectsWith(materialiseSources(from('/to-metadata'), { ...NODE, download }), 'E_SOURCE_URL_REFUSED');
    assert.match(metadata.message, 'leads to 169.254.169.254 (metadata.example.test), which is not a public address (link-local');
    for (const [path, scheme] of [['/to-file', 'file:'], ['/to-gopher', 'gopher:']]) {
      const error = await rejectsWith(materialiseSources(from(path!), { ...NODE, download }), 'E_SOURCE_URL_REFUSED');
      assert.match(error.message, `goes to a ${scheme} URL; only http and https are followed`);
    }
    assert.equal(internal.hits, [], 'the loopback service was never reached');
  } finally {
    await files.close();
    await internal.close();
  }
});

test('a host name is resolved once per connection and the checked address is the one connected to (no DNS rebinding)', async () => {
  // Both servers listen on the same port, so only the address decides who answers. The rebinding
  // name's first answer passes the check; every later one points inside.
  const allowed = await serve('127.0.0.2', (_request, response) => response.end('from the checked address'));
  const twin = await serve('127.0.0.1', (_request, response) => response.end('internal secret'), allowed.port);
  let answers = 0;
  const download = {
    allowPrivateAddresses: ['127.0.0.2'],
    resolve: async () => (answers++ === 0 ? ['127.0.0.2'] : ['127.0.0.1']),
  };
  try {
    const source = await materialiseSources(urlSpec(`http://rebind.example.test:${allowed.port}/f.js`), { ...NODE, download });
    assert.is(source.files[0]?.content.toString(), 'from the checked address');
    assert.is(answers, 1, 'resolved once, and that answer was used to connect');
    assert.equal(twin.hits, []);
  } finally {
    await allowed.close();
    await twin.close();
  }
});

test('allowPrivateAddresses given as a list must hold addresses or CIDR ranges', async () => {
  const error = await rejectsWith(
    materialiseSources(urlSpec('http://127.0.0.1:9/f.js'), { ...NODE, download: { allowPrivateAddresses: ['10.0.0.0/33'] } }),
    'E_CONFIG_INVALID',
  );
  assert.match(error.message, '"10.0.0.0/33" is none of these');
});

test('CLI build with a url source on loopback: exit 2 E_SOURCE_URL_REFUSED, nothing fetched, built or pushed; --allow-private-addresses opts in', async () => {
  const server = await serve('127.0.0.1', (_request, response) => response.end('module.exports = { hello: () => "hi" }'));
  try {
    const path = writeInput('loopback-url.yaml', fnYaml('ssrf', { 'function-content-type': 'url', function: `${server.url}/handler.js` }));
    const build = await cli(['build', path, '--registry', `${registry.host}/hostile`]);
    assertRefused(build, 'E_SOURCE_URL_REFUSED');
    assert.match(build.stderr, `function default/ssrf: spec.function: ${server.url}/handler.js leads to 127.0.0.1`);
    assert.equal(server.hits, []);
    assert.equal(await registryTags(registry, 'hostile/ssrf'), []);

    const tag = await cli(['tag', path]);
    assertRefused(tag, 'E_SOURCE_URL_REFUSED');
    assert.equal(server.hits, []);
    // The opt-in: `tag` downloads a url source without a checksum to identify it.
    const allowed = await cli(['tag', path, '--allow-private-addresses']);
    assert.is(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stdout.trim(), /^[0-9a-f]{64}$/);
    assert.equal(server.hits, ['/handler.js']);
  } finally {
    await server.close();
  }
});

test('the Job refuses a loopback url source unless function-url-allow-private-addresses says otherwise', async () => {
  const server = await serve('127.0.0.1', (_request, response) => response.end('module.exports = { hello: () => "hi" }'));
  const none = join(dir, 'not-mounted');
  const terminationLog = join(dir, 'job-termination-log');
  const env = { BUILDER_CONFIG_DIR: none, BUILDER_SECRET_DIR: none, BUILDER_REGISTRY: `${registry.host}/hostile`, BUILDER_TERMINATION_LOG: terminationLog };
  try {
    const fn = fnYaml('job-ssrf', { 'function-content-type': 'url', function: `${server.url}/handler.js` });
    const refused = await cli(['job'], { env: { ...env, BUILDER_FUNCTION: fn } });
    assert.is(refused.code, 2, refused.stdout);
    assert.is(JSON.parse(readFileSync(terminationLog, 'utf8')).error.code, 'E_SOURCE_URL_REFUSED');
    assert.equal(server.hits, []);
    // Allowed, the download happens; the build then needs the daemon, which is not there (exit 3).
    const allowed = await cli(['job'], { env: { ...env, BUILDER_FUNCTION: fn, BUILDER_ALLOW_PRIVATE_ADDRESSES: '127.0.0.0/8' } });
    assert.equal(server.hits, ['/handler.js']);
    assert.is(allowed.code, 3, allowed.stdout);
    assert.is(JSON.parse(readFileSync(terminationLog, 'utf8')).error.code, 'E_DOCKER_UNAVAILABLE');
    const bad = await cli(['job'], { env: { ...env, BUILDER_FUNCTION: fn, BUILDER_ALLOW_PRIVATE_ADDRESSES: 'yes please' } });
    assert.is(bad.code, 2);
    assert.match(JSON.parse(readFileSync(terminationLog, 'utf8')).error.message, 'function-url-allow-private-addresses (env BUILDER_ALLOW_PRIVATE_ADDRESSES) must be "true", "false" or');
    assert.equal(await registryTags(registry, 'hostile/job-ssrf'), []);
  } finally {
    await server.close();
  }
});

test('job-manifest carries function-url-allow-private-addresses from kubeless-config (or the flag) into the build input Secret', async () => {
  const fn = writeInput('manifest-fn.yaml', fnYaml('manifest', { function: 'module.exports = {}' }));
  const config = (value: string) => writeInput(`kubeless-config-${value.length}.yaml`, stringify({
    apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kubeless-config', namespace: 'kubeless' },
    data: { 'builder-image': 'registry.example.com/builder:1', 'function-url-allow-private-addresses': value },
  }));
  const listed = await cli(['job-manifest', fn, '--kubeless-config', config('10.20.0.0/16, 192.168.1.10'), '--registry', 'registry.example.com/fns']);
  assert.is(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, 'function-url-allow-private-addresses: 10.20.0.0/16,192.168.1.10');
  const none = await cli(['job-manifest', fn, '--builder-image', 'b:1', '--registry', 'registry.example.com/fns']);
  assert.not.match(none.stdout, 'function-url-allow-private-addresses');
  const flag = await cli(['job-manifest', fn, '--builder-image', 'b:1', '--registry', 'registry.example.com/fns', '--allow-private-addresses']);
  assert.match(flag.stdout, "function-url-allow-private-addresses: \"true\"");
  const bad = await cli(['job-manifest', fn, '--kubeless-config', config('10.0.0.0/8,nonsense'), '--registry', 'registry.example.com/fns']);
  assertRefused(bad, 'E_CONFIG_INVALID');
  assert.match(bad.stderr, '"nonsense" is none of these');
});

// ---------------------------------------------------------------------------------------------
// YAML and JSON bombs, oversized input

function aliasBomb(levels: number): string {
  const lines = ['a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
  for (let level = 1; level <= levels; level += 1) {
    lines.push(`a${level}: &a${level} [${Array.from({ length: 10 }, () => `*a${level - 1}`).join(', ')}]`);
  }
  return `${lines.join('\n')}\n`;
}

test('a YAML alias bomb is E_FUNCTION_INVALID (exit 2) in build, tag, job and job-manifest, never a ReferenceError', async () => {
  // As a Function's field too: the aliases sit where a real Function's values would.
  const inField = `${fnYaml('bomb', { function: 'module.exports = {}' })}${aliasBomb(9).split('\n').map((line) => (line ? `x${line}` : line)).join('\n')}`;
  for (const text of [aliasBomb(9), inField]) {
    const path = writeInput('bomb.yaml', text);
    for (const args of [['build', path, '--registry', `${registry.host}/hostile`], ['tag', path], ['job-manifest', path, '--builder-image', 'b:1'], ['build', '-']]) {
      const run = await cli(args, { input: text });
      assertRefused(run, 'E_FUNCTION_INVALID');
      assert.match(run.stderr, 'expands its YAML aliases into too many nodes');
    }
    const job = await cli(['job'], { env: { BUILDER_FUNCTION: text, BUILDER_CONFIG_DIR: join(dir, 'none'), BUILDER_SECRET_DIR: join(dir, 'none'), BUILDER_TERMINATION_LOG: join(dir, 'bomb-termination') } });
    assert.is(job.code, 2, job.stdout + job.stderr);
    assert.match(job.stdout, '"code":"E_FUNCTION_INVALID"');
  }
});

test('deep nesting and token floods are refused while being read: a 1M-deep JSON, 64+ levels of YAML, 4 MiB of one-character items', async () => {
  const deepJson = `${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`;
  const run = await cli(['tag', '-'], { input: deepJson });
  assertRefused(run, 'E_FUNCTION_INVALID');
  assert.match(run.stderr, 'nests mappings and sequences more than 64 deep');

  const deepYaml = `${fnYaml('deep', { function: 'x' })}extra: ${'['.repeat(65)}${']'.repeat(65)}\n`;
  assert.match((await cli(['tag', '-'], { input: deepYaml })).stderr, 'more than 64 deep');
  const flood = `${fnYaml('flood', { function: 'x' })}extra:\n${'- a\n'.repeat(1_000_000)}`;
  const flooded = await cli(['tag', '-'], { input: flood });
  assertRefused(flooded, 'E_FUNCTION_INVALID');
  assert.match(flooded.stderr, 'more than 50000 YAML/JSON tokens');
  const jsonFlood = await cli(['tag', '-'], { input: `{"apiVersion": "kubeless.io/v1beta1", "extra": [${'1,'.repeat(1_000_000)}1]}` });
  assertRefused(jsonFlood, 'E_FUNCTION_INVALID');
  assert.match(jsonFlood.stderr, 'more than 50000 YAML/JSON tokens');
  // YAML flow style that is not JSON still reads as YAML.
  const flow = await cli(['tag', '-'], { input: `{apiVersion: kubeless.io/v1beta1, kind: Function, metadata: {name: flow}, spec: {handler: h.f, runtime: nodejs14, function: x}}` });
  assert.is(flow.code, 0, flow.stderr);
  // 60 levels of nesting (strange, but within the limit) still parse.
  const fine = await cli(['tag', '-'], { input: `${fnYaml('nested', { function: 'x' })}extra: ${'['.repeat(60)}${']'.repeat(60)}\n` });
  assert.is(fine.code, 0, fine.stderr);
});

test('a 100 MB Function on stdin is refused after the first 4 MiB, not read to the end', async () => {
  const huge = Buffer.from(fnYaml('huge', { function: 'x'.repeat(100 * MB) }));
  for (const command of ['build', 'tag']) {
    const run = await cli([command, '-', ...(command === 'build' ? ['--registry', `${registry.host}/hostile`] : [])], { input: huge });
    assertRefused(run, 'E_FUNCTION_TOO_LARGE');
    assert.match(run.stderr, 'the Function on stdin is more than the limit of 4194304 bytes');
    // Well below what reading 100 MB would take (the whole text, then its UTF-16 copy).
    assert.ok(run.peakRssMb < 300, `peak RSS ${run.peakRssMb.toFixed(0)} MB`);
  }
  const file = writeInput('huge.yaml', huge);
  const fromFile = await cli(['tag', file]);
  assertRefused(fromFile, 'E_FUNCTION_TOO_LARGE');
  assert.match(fromFile.stderr, `the Function file ${file} is ${huge.length} bytes`);
  assert.equal(await registryTags(registry, 'hostile/huge'), []);
});

test('inline fields past their limits, given as objects to the library: spec.deps 50 MB, spec.function 5 MB', () => {
  const deps = functionObject('big-deps', { handler: 'handler.hello', runtime: 'nodejs14', function: 'x', deps: 'y'.repeat(50 * MB) });
  assert.throws(() => parseFunction(deps), (error: { code?: string; message?: string }) =>
    error.code === 'E_FUNCTION_TOO_LARGE' && /function default\/big-deps: spec\.deps is 52428800 bytes, more than the limit of 1048576/.test(error.message ?? ''));
  const source = functionObject('big-source', { handler: 'handler.hello', runtime: 'nodejs14', 'function-content-type': 'base64', function: 'QUJD'.repeat(1.25 * MB) });
  assert.throws(() => parseFunction(source), (error: { code?: string; message?: string }) => error.code === 'E_FUNCTION_TOO_LARGE' && /spec\.function is 5242880 bytes/.test(error.message ?? ''));
});

// ---------------------------------------------------------------------------------------------
// Archives

test('an archive of 100 000 entries is refused at entry 10 001 (tar.gz through the CLI; a zip of 65 000 from a url)', async () => {
  const entries = Array.from({ length: 100_000 }, (_, index) => ({ name: `f${index}.js`, content: '' }));
  const tgz = gzip(await makeTar(entries));
  const path = writeInput('many.yaml', fnYaml('many', { 'function-content-type': 'base64+compressedtar', function: tgz.toString('base64') }));
  const run = await cli(['build', path, '--registry', `${registry.host}/hostile`]);
  assertRefused(run, 'E_ARCHIVE_UNSAFE');
  assert.match(run.stderr, 'archive entry "f10000.js" is past the limit of 10000 entries per archive');
  assert.equal(await registryTags(registry, 'hostile/many'), []);

  // 65 000: as many as a zip without zip64 records holds, and still far past the limit. At 6 MB it
  // is past the inline limit too, so it comes the way large sources must: from a url.
  const zip = makeZip(entries.slice(0, 65_000).map((entry) => ({ ...entry, store: true })));
  const server = await serve('127.0.0.1', (_request, response) => response.end(zip));
  try {
    const spec = parseFunction(functionObject('many-zip', { handler: 'f0.hello', runtime: 'nodejs14', 'function-content-type': 'url+zip', function: `${server.url}/many.zip` }));
    const error = await rejectsWith(materialiseSources(spec, { ...NODE, download: { allowPrivateAddresses: ['127.0.0.1'] } }), 'E_ARCHIVE_UNSAFE');
    assert.match(error.message, '"f10000.js" is past the limit of 10000 entries');
  } finally {
    await server.close();
  }
});

test('a directory tree 5 000 deep is refused at depth 101, in tar and zip alike', async () => {
  const tree = Array.from({ length: 5000 }, (_, depth) => ({ name: 'd/'.repeat(depth + 1), type: 'directory' as const }));
  const tgz = gzip(await makeTar([...tree, { name: `${'d/'.repeat(5000)}handler.js`, content: 'module.exports = {}' }]));
  const path = writeInput('deep.yaml', fnYaml('deep-tree', { 'function-content-type': 'base64+compressedtar', function: tgz.toString('base64') }));
  const run = await cli(['build', path, '--registry', `${registry.host}/hostile`]);
  assertRefused(run, 'E_ARCHIVE_UNSAFE');
  assert.match(run.stderr, 'is nested more than 100 directories deep');
  assert.equal(await registryTags(registry, 'hostile/deep-tree'), []);

  const zip = makeZip([{ name: `${'d/'.repeat(5000)}handler.js`, content: 'module.exports = {}' }]);
  const spec = parseFunction(functionObject('deep-zip', { handler: 'handler.hello', runtime: 'nodejs14', 'function-content-type': 'base64+zip', function: zip.toString('base64') }));
  assert.match((await rejectsWith(materialiseSources(spec, NODE), 'E_ARCHIVE_UNSAFE')).message, 'nested more than 100 directories deep');

  // 100 levels, a deep but legitimate tree, is unpacked.
  const ok = gzip(await makeTar([{ name: `${'d/'.repeat(99)}handler.js`, content: 'module.exports = {}' }]));
  const okSpec = parseFunction(functionObject('deep-ok', { handler: 'handler.hello', runtime: 'nodejs14', 'function-content-type': 'base64+compressedtar', function: ok.toString('base64') }));
  assert.is((await materialiseSources(okSpec, NODE)).files.length, 1);
});

// ---------------------------------------------------------------------------------------------
// Names and namespaces

test('names and namespaces at their Kubernetes limits are accepted; past them, or with unicode, E_FUNCTION_INVALID', async () => {
  const cases: { name: string; namespace?: string; code: number; match?: string }[] = [
    { name: 'a'.repeat(253), code: 0 },
    { name: `${'a'.repeat(61)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}`, code: 0 },
    { name: 'ok', namespace: 'n'.repeat(63), code: 0 },
    { name: 'a'.repeat(254), code: 2, match: 'metadata.name: must be a lower-case DNS-1123 name' },
    { name: 'ok', namespace: 'n'.repeat(64), code: 2, match: 'metadata.namespace: must be a lower-case DNS-1123 label' },
    { name: 'héllo', code: 2, match: 'metadata.name' },
    { name: 'ｈｅｌｌｏ', code: 2, match: 'metadata.name' },
    { name: 'hello\u200b', code: 2, match: 'metadata.name' },
    { name: 'ok', namespace: 'équipe', code: 2, match: 'metadata.namespace' },
    { name: 'ok', namespace: 'team.a', code: 2, match: 'metadata.namespace' },
  ];
  for (const { name, namespace, code, match } of cases) {
    const text = stringify({ ...functionObject(name, { handler: 'handler.hello', runtime: 'nodejs14', function: 'x' }), metadata: { name, namespace: namespace ?? 'default' } });
    const run = await cli(['tag', '-'], { input: text });
    assert.is(run.code, code, `${name} / ${namespace}: ${run.stderr}`);
    if (match !== undefined) assertRefused(run, 'E_FUNCTION_INVALID');
    if (match !== undefined) assert.match(run.stderr, match);
  }
  // At the limit the name still cannot make an image name past 255 characters: a typed refusal.
  const longest = stringify(functionObject('a'.repeat(253), { handler: 'handler.hello', runtime: 'nodejs14', function: 'x' }));
  const build = await cli(['build', '-', '--registry', `${registry.host}/hostile`], { input: longest });
  assertRefused(build, 'E_TARGET_INVALID');
  assert.match(build.stderr, 'is longer than 255 characters');
  const manifest = await cli(['job-manifest', '-', '--builder-image', 'b:1', '--registry', 'r.example'], { input: longest });
  assert.is(manifest.code, 2, manifest.stderr);
  assert.match(manifest.stderr, 'E_TARGET_INVALID');
});

test.run();
