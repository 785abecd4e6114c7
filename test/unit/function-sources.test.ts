import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sha256Hex } from '../../lib/function/files.ts';
import { parseFunction } from '../../lib/function/parse.ts';
import { materialiseSources, type MaterialisedSource, type SourceOptions } from '../../lib/function/source.ts';
import { bzip2, gzip, makeTar, makeZip, xz, type TestEntry } from '../support/archives.ts';
import { rejectsWith } from '../support/errors.ts';
import { LOOPBACK_SOURCES } from '../support/pipeline.ts';

const NODE: SourceOptions = { depName: 'package.json', fileNameSuffix: '.js' };
/** The url tests serve from loopback, which only an explicit allowance admits. */
const LOCAL: SourceOptions = { ...NODE, download: LOOPBACK_SOURCES };
const CODE = "module.exports = { hello: () => 'hello' };\n";
const PACKAGE = '{"dependencies":{"left-pad":"1.3.0"}}\n';

function spec(source: string, contentType = 'text', extra: Record<string, unknown> = {}) {
  return parseFunction({
    apiVersion: 'kubeless.io/v1beta1',
    kind: 'Function',
    metadata: { name: 'hello', namespace: 'src' },
    spec: { handler: 'handler.hello', runtime: 'nodejs14', function: source, 'function-content-type': contentType, ...extra },
  });
}


function tree(source: MaterialisedSource): string[] {
  return source.files.map((file) => `${file.path} ${file.type} ${file.mode.toString(8)} ${file.type === 'symlink' ? `-> ${file.linkTarget}` : file.content.toString()}`);
}

const entries: TestEntry[] = [
  { name: './', type: 'directory' },
  { name: './handler.js', content: CODE, mode: 0o600 },
  { name: './package.json', content: PACKAGE },
  { name: './lib/', type: 'directory', mode: 0o700 },
  { name: './lib/run.sh', content: '#!/bin/sh\n', mode: 0o4750 },
  { name: './lib/current.js', type: 'symlink', linkname: '../handler.js' },
];
const expectedTree = [
  `handler.js file 644 ${CODE}`,
  'lib directory 755 ',
  'lib/current.js symlink 777 -> ../handler.js',
  'lib/run.sh file 755 #!/bin/sh\n',
  `package.json file 644 ${PACKAGE}`,
];

test('text: one file <module><suffix>, mode 0644', async () => {
  const source = await materialiseSources(spec(CODE), NODE);
  assert.equal(tree(source), [`handler.js file 644 ${CODE}`]);
  assert.is(source.sha256, sha256Hex(CODE));
  assert.is(source.deps, undefined);
});

test('base64: decoded bytes, binary-safe, with the runtime suffix', async () => {
  const bytes = Buffer.from([0, 255, 10, 13, 1, 2, 3]);
  const source = await materialiseSources(spec(bytes.toString('base64'), 'base64'), { depName: 'requirements.txt', fileNameSuffix: '.py' });
  assert.is(source.files[0]?.path, 'handler.py');
  assert.ok(source.files[0]?.content.equals(bytes));
});

test('base64 wrapped over several lines (as `base64` prints it) is accepted', async () => {
  const text = Buffer.from(CODE.repeat(5)).toString('base64').replace(/(.{76})/g, '$1\n');
  const source = await materialiseSources(spec(text, 'base64'), NODE);
  assert.is(source.files[0]?.content.toString(), CODE.repeat(5));
});

test('every archive format unpacks to the same normalised tree', async () => {
  const tar = await makeTar(entries);
  const zip = makeZip(entries.filter((entry) => entry.name !== './').map((entry) => ({ ...entry, name: entry.name.replace(/^\.\//, '') })));
  const cases: [string, string, Buffer][] = [
    ['tar', 'base64+compressedtar', tar],
    ['tar.gz', 'base64+compressedtar', gzip(tar)],
    ['tar.bz2', 'base64+compressedtar', bzip2(tar)],
    ['tar.xz', 'base64+compressedtar', xz(tar)],
    ['zip', 'base64+zip', zip],
  ];
  for (const [format, type, bytes] of cases) {
    const source = await materialiseSources(spec(bytes.toString('base64'), type, { checksum: `sha256:${sha256Hex(bytes)}` }), NODE);
    assert.equal(tree(source), expectedTree, format);
  }
});

test('+deps takes the deps file from the archive; it must be there', async () => {
  const tgz = gzip(await makeTar(entries));
  const source = await materialiseSources(spec(tgz.toString('base64'), 'base64+compressedtar+deps'), NODE);
  assert.is(source.deps?.content.toString(), PACKAGE);
  assert.is(source.deps?.fromArchive, true);

  const without = gzip(await makeTar([{ name: 'handler.js', content: CODE }]));
  const error = await rejectsWith(materialiseSources(spec(without.toString('base64'), 'base64+compressedtar+deps'), NODE), 'E_FUNCTION_INVALID');
  assert.match(error.message, /function src\/hello: spec\.function: the archive must hold package\.json/);

  const conflict = spec(tgz.toString('base64'), 'base64+compressedtar+deps', { deps: '{"other":1}' });
  assert.match((await rejectsWith(materialiseSources(conflict, NODE), 'E_FUNCTION_INVALID')).message, /spec\.deps: differs from the archive's package\.json/);
});

test('spec.deps is the deps file otherwise, and replaces an archive copy with a warning', async () => {
  const text = await materialiseSources(spec(CODE, 'text', { deps: PACKAGE }), NODE);
  assert.is(text.deps?.content.toString(), PACKAGE);
  assert.is(text.deps?.fromArchive, false);

  const tgz = gzip(await makeTar(entries));
  const replaced = await materialiseSources(spec(tgz.toString('base64'), 'base64+compressedtar', { deps: '{"replaced":true}' }), NODE);
  assert.not.ok(replaced.files.some((file) => file.path === 'package.json'));
  assert.is(replaced.deps?.content.toString(), '{"replaced":true}');
  assert.match(replaced.warnings.join('\n'), /package\.json is replaced by spec\.deps/);

  assert.match((await rejectsWith(materialiseSources(spec(CODE, 'text', { deps: 'x' }), { depName: '', fileNameSuffix: '.bal' }), 'E_FUNCTION_INVALID')).message, /spec\.deps: is set but runtime/);
});

test('checksum: verified against the decoded bytes; a mismatch names expected and actual', async () => {
  const bytes = Buffer.from(CODE);
  await materialiseSources(spec(bytes.toString('base64'), 'base64', { checksum: `sha256:${sha256Hex(bytes)}` }), NODE);
  const wrong = `sha256:${'0'.repeat(64)}`;
  const error = await rejectsWith(materialiseSources(spec(bytes.toString('base64'), 'base64', { checksum: wrong }), NODE), 'E_CHECKSUM_MISMATCH');
  assert.is(error.kind, 'user');
  assert.ok(error.message.includes(wrong));
  assert.ok(error.message.includes(`sha256:${sha256Hex(bytes)}`));
  assert.match(error.message, /function src\/hello: spec\.checksum/);
});

test('the content type must match the bytes: a tar under +zip, a zip under +compressedtar, junk', async () => {
  const tgz = gzip(await makeTar(entries));
  assert.match((await rejectsWith(materialiseSources(spec(tgz.toString('base64'), 'base64+zip'), NODE), 'E_SOURCE_INVALID')).message, /not a zip archive; it looks like a tar/);
  const zip = makeZip([{ name: 'handler.js', content: CODE }]);
  assert.match((await rejectsWith(materialiseSources(spec(zip.toString('base64'), 'base64+compressedtar'), NODE), 'E_SOURCE_INVALID')).message, /looks like a zip archive: use \+zip/);
  const junk = Buffer.from('just some text, no archive at all').toString('base64');
  await rejectsWith(materialiseSources(spec(junk, 'base64+compressedtar'), NODE), 'E_SOURCE_INVALID');
  const corrupt = Buffer.concat([Buffer.from([0x1f, 0x8b]), Buffer.from('not gzip data')]).toString('base64');
  assert.match((await rejectsWith(materialiseSources(spec(corrupt, 'base64+compressedtar'), NODE), 'E_SOURCE_INVALID')).message, /gzip data of the archive is corrupt/);
});

// --- url sources, against an HTTP server on loopback -------------------------------------------

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

async function withServer(handler: Handler, body: (base: string) => Promise<void>): Promise<void> {
  const sockets = new Set<import('node:net').Socket>();
  const server: Server = createServer(handler);
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await body(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}

test('url: downloaded, redirects followed, checksum verified on the downloaded bytes', async () => {
  const tgz = gzip(await makeTar(entries));
  let authorization: string | undefined;
  await withServer((request, response) => {
    if (request.url === '/moved') {
      response.writeHead(302, { location: '/f.tgz' }).end();
      return;
    }
    authorization = request.headers.authorization;
    response.writeHead(request.url === '/f.tgz' ? 200 : 404).end(request.url === '/f.tgz' ? tgz : '');
  }, async (base) => {
    const good = await materialiseSources(spec(`${base}/moved`, 'url+compressedtar', { checksum: `sha256:${sha256Hex(tgz)}` }), LOCAL);
    assert.equal(tree(good), expectedTree);
    assert.is(authorization, undefined);
    const withCredentials = await materialiseSources(spec(base.replace('http://', 'http://user:pa%3Ass@') + '/f.tgz', 'url+compressedtar'), LOCAL);
    assert.equal(tree(withCredentials), expectedTree);
    assert.is(authorization, `Basic ${Buffer.from('user:pa:ss').toString('base64')}`);
    const error = await rejectsWith(materialiseSources(spec(`${base}/f.tgz`, 'url+compressedtar', { checksum: `sha256:${'1'.repeat(64)}` }), LOCAL), 'E_CHECKSUM_MISMATCH');
    assert.ok(error.message.includes(sha256Hex(tgz)));
  });
});

test('url: HTTP errors are typed (4xx user, 5xx infrastructure) and never show credentials or query', async () => {
  await withServer((request, response) => {
    response.writeHead(request.url?.startsWith('/missing') ? 404 : 503).end('nope');
  }, async (base) => {
    const missing = await rejectsWith(materialiseSources(spec(`${base.replace('http://', 'http://me:secret@')}/missing?sig=topsecret`, 'url'), LOCAL), 'E_SOURCE_DOWNLOAD');
    assert.is(missing.kind, 'user');
    assert.match(missing.message, /HTTP 404/);
    assert.not.match(missing.message, /secret/);
    const down = await rejectsWith(materialiseSources(spec(`${base}/broken`, 'url'), LOCAL), 'E_SOURCE_DOWNLOAD');
    assert.is(down.kind, 'infrastructure');
    assert.match(down.message, /HTTP 503/);
  });
});

test('url: redirect loops, non-http redirects and refused connections fail clearly', async () => {
  await withServer((request, response) => {
    if (request.url === '/loop') response.writeHead(301, { location: '/loop' }).end();
    else response.writeHead(302, { location: 'file:///etc/passwd' }).end();
  }, async (base) => {
    assert.match((await rejectsWith(materialiseSources(spec(`${base}/loop`, 'url'), { ...NODE, download: { ...LOOPBACK_SOURCES, maxRedirects: 3 } }), 'E_SOURCE_DOWNLOAD')).message, /more than 3 redirects/);
    assert.match((await rejectsWith(materialiseSources(spec(`${base}/file`, 'url'), LOCAL), 'E_SOURCE_URL_REFUSED')).message, /redirect 1 from http:\/\/127\.0\.0\.1:\d+\/file goes to a file: URL/);
  });
  const refused = await rejectsWith(materialiseSources(spec('http://127.0.0.1:9/f.js', 'url'), LOCAL), 'E_SOURCE_DOWNLOAD');
  assert.is(refused.kind, 'infrastructure');
});

test('url: the time limit covers a server that never finishes', async () => {
  await withServer((_request, response) => {
    response.writeHead(200, { 'content-length': '1000' });
    response.write('partial');
  }, async (base) => {
    const started = Date.now();
    const error = await rejectsWith(materialiseSources(spec(`${base}/slow`, 'url'), { ...NODE, download: { ...LOOPBACK_SOURCES, timeoutMs: 300 } }), 'E_SOURCE_DOWNLOAD');
    assert.is(error.kind, 'infrastructure');
    assert.match(error.message, /within 300 ms/);
    assert.ok(Date.now() - started < 5000);
  });
});

test('url: the size limit holds with and without Content-Length', async () => {
  const big = Buffer.alloc(64 * 1024, 'a');
  await withServer((request, response) => {
    if (request.url === '/chunked') {
      response.writeHead(200);
      response.write(big);
      response.end(big);
    } else {
      response.writeHead(200, { 'content-length': String(big.length) }).end(big);
    }
  }, async (base) => {
    const options = { ...NODE, download: { ...LOOPBACK_SOURCES, maxBytes: 100_000 } };
    assert.match((await rejectsWith(materialiseSources(spec(`${base}/sized`, 'url'), { ...NODE, download: { ...LOOPBACK_SOURCES, maxBytes: 1000 } }), 'E_SOURCE_TOO_LARGE')).message, /65536 bytes, more than the limit of 1000/);
    assert.match((await rejectsWith(materialiseSources(spec(`${base}/chunked`, 'url'), options), 'E_SOURCE_TOO_LARGE')).message, /limit of 100000/);
    const ok = await materialiseSources(spec(`${base}/sized`, 'url'), options);
    assert.is(ok.files[0]?.content.length, big.length);
  });
});

test.run();
