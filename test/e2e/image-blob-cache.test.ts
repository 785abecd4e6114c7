// The local blob cache: blobs stored only once their digest is verified, racing writers safe, no temp
// files left, and fetched from a real registry (distribution, through a fault proxy that counts the
// requests) once: a second fetch of the same blob sends nothing.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobCache, BlobCacheError, BlobDigestError, CACHE_DIR_ENV, defaultCacheDir } from '../../lib/image/blob-cache.ts';
import { RegistryClient } from '../../lib/registry/client.ts';
import { RegistryError } from '../../lib/registry/errors.ts';
import { sha256Digest } from '../../lib/registry/manifest.ts';
import { rejectsWith } from '../support/errors.ts';
import { filesUnder } from '../support/files.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { startRegistry, type RegistryHandle } from '../support/registry.ts';

const test = suite('blob cache');
let dir = '';
let registry: RegistryHandle;
let proxy: FaultProxy;
/** GET /v2/<repo>/blobs/<corrupt digest> is answered with other bytes. */
let corruptDigest = '';
/** GET /v2/<repo>/blobs/<stalled digest> sends 1000 bytes of the blob and then nothing. */
let stalled: { digest: string; data: Buffer } | undefined;

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fib-blob-cache-'));
  registry = await startRegistry('anonymous');
  proxy = await startFaultProxy(registry.url, {
    intercept: (req) => {
      if (req.method !== 'GET') return undefined;
      if (corruptDigest !== '' && req.url?.endsWith(`/blobs/${corruptDigest}`)) return { status: 200, body: 'not the blob' };
      if (stalled && req.url?.endsWith(`/blobs/${stalled.digest}`)) return { status: 200, body: stalled.data, stallAfter: 1000, headers: { 'content-type': 'application/octet-stream' } };
      return undefined;
    },
  });
});

test.after(async () => {
  await proxy?.stop();
  await registry?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('the default directory follows FUNCTION_IMAGE_BUILDER_CACHE_DIR, then XDG_CACHE_HOME, then ~/.cache', () => {
  assert.is(defaultCacheDir({ [CACHE_DIR_ENV]: '/x/cache', XDG_CACHE_HOME: '/y', HOME: '/home/u' }), '/x/cache');
  assert.is(defaultCacheDir({ XDG_CACHE_HOME: '/y', HOME: '/home/u' }), '/y/function-image-builder');
  // A relative XDG_CACHE_HOME is invalid by the XDG spec and ignored.
  assert.is(defaultCacheDir({ XDG_CACHE_HOME: 'rel', HOME: '/home/u' }), '/home/u/.cache/function-image-builder');
  assert.is(defaultCacheDir({ HOME: '/home/u' }), '/home/u/.cache/function-image-builder');
});

test('put stores a blob under its digest, and bytes that do not match are not stored', async () => {
  const cache = new BlobCache(join(dir, 'put'));
  const data = randomBytes(100_000);
  const digest = sha256Digest(data);
  assert.is(await cache.size(digest), undefined);
  assert.is(await cache.put(digest, [data.subarray(0, 10), data.subarray(10)]), data.length);
  assert.ok(readFileSync(cache.path(digest)).equals(data));
  assert.is(await cache.size(digest, data.length), data.length);
  assert.is(await cache.size(digest, data.length + 1), undefined, 'a stored blob of another size does not count');

  const other = sha256Digest('something else');
  const error = await rejectsWith(cache.put(other, [data]), 'E_CACHE_DIGEST_MISMATCH', BlobDigestError);
  assert.match(error.message, digest);
  const short = await rejectsWith(cache.put(digest, [data], data.length - 1), 'E_CACHE_DIGEST_MISMATCH', BlobDigestError);
  assert.match(short.message, `the ${data.length} bytes received are not the ${data.length - 1} bytes expected`, 'bytes that hash to the digest but are not the size given are told as the wrong size');
  assert.equal(filesUnder(cache.dir), [cache.path(digest)], 'no temp file and no wrong blob left');
});

test('a source that fails mid-blob leaves no file', async () => {
  const cache = new BlobCache(join(dir, 'broken'));
  async function* breaking() {
    yield randomBytes(1000);
    throw new Error('connection reset');
  }
  try {
    await cache.put(sha256Digest('x'), breaking());
    assert.unreachable('the failure reaches the caller');
  } catch (error) {
    assert.is((error as Error).message, 'connection reset');
  }
  assert.equal(filesUnder(cache.dir), []);
});

test('racing writers of one blob all succeed and leave one complete file', async () => {
  const root = join(dir, 'race');
  const data = randomBytes(2 * 1024 * 1024);
  const digest = sha256Digest(data);
  // Separate instances, as separate processes would be: nothing in memory is shared.
  async function* slowly() {
    for (let i = 0; i < data.length; i += 65536) {
      yield data.subarray(i, i + 65536);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
  const sizes = await Promise.all(Array.from({ length: 6 }, () => new BlobCache(root).put(digest, slowly())));
  assert.equal(sizes, Array(6).fill(data.length));
  assert.equal(filesUnder(root), [new BlobCache(root).path(digest)]);
  assert.ok(readFileSync(new BlobCache(root).path(digest)).equals(data));
});

test('a cache directory that cannot be created is a clear error naming it', async () => {
  const blocker = join(dir, 'a-file');
  writeFileSync(blocker, 'not a directory');
  const cache = new BlobCache(join(blocker, 'cache'));
  const error = await rejectsWith(cache.put(sha256Digest('x'), [Buffer.from('x')]), 'E_CACHE_UNUSABLE', BlobCacheError);
  assert.match(error.message, join(blocker, 'cache'));
  assert.match(error.message, '--cache-dir');
  assert.is(error.kind, 'user');
});

test('fetch streams a blob from the registry once; the second fetch sends no request', async () => {
  const client = new RegistryClient({ registry: proxy.host, retryDelayMs: 10 });
  const repo = `fib-test/cache-${randomBytes(4).toString('hex')}`;
  const data = randomBytes(3 * 1024 * 1024 + 17);
  const { digest } = await client.pushBlob(repo, data);
  const cache = new BlobCache(join(dir, 'fetch'));

  const before = proxy.requests.length;
  assert.equal(await cache.fetch(client, repo, digest, data.length), { digest, size: data.length, downloaded: true });
  const gets = proxy.requests.slice(before).filter((r) => r.method === 'GET' && r.path.includes('/blobs/'));
  assert.is(gets.length, 1);
  assert.ok(readFileSync(cache.path(digest)).equals(data));

  const again = proxy.requests.length;
  assert.equal(await cache.fetch(client, repo, digest, data.length), { digest, size: data.length, downloaded: false });
  assert.is(proxy.requests.length, again, 'nothing was asked of the registry');

  // Two fetches of one digest at once in a process share one download.
  const shared = randomBytes(500_000);
  const sharedDigest = (await client.pushBlob(repo, shared)).digest;
  const start = proxy.requests.length;
  const both = await Promise.all([cache.fetch(client, repo, sharedDigest), cache.fetch(client, repo, sharedDigest)]);
  assert.equal(both.map((r) => r.downloaded).sort(), [false, true]);
  assert.is(proxy.requests.slice(start).filter((r) => r.method === 'GET').length, 1);
});

test('a blob whose bytes do not match its digest is refused by the stream and not stored', async () => {
  const client = new RegistryClient({ registry: proxy.host, retryDelayMs: 10 });
  try {
    const repo = `fib-test/cache-${randomBytes(4).toString('hex')}`;
    const data = randomBytes(4096);
    corruptDigest = (await client.pushBlob(repo, data)).digest;
    const cache = new BlobCache(join(dir, 'corrupt'));
    const error = await rejectsWith(cache.fetch(client, repo, corruptDigest), 'E_REGISTRY_DIGEST_MISMATCH', RegistryError);
    assert.match(error.message, corruptDigest);
    assert.is(await cache.size(corruptDigest), undefined);
    assert.equal(filesUnder(cache.dir), []);
  } finally {
    corruptDigest = '';
  }
});

test('a download of another length than the descriptor gives is refused and not stored (openBlob checked the digest, the cache the length)', async () => {
  const data = randomBytes(10_000);
  const digest = sha256Digest(data);
  const client = { openBlob: async () => ({ size: data.length, stream: (async function* () { yield data; })() }) };
  const cache = new BlobCache(join(dir, 'length'));
  const error = await rejectsWith(cache.fetch(client, 'any/repo', digest, data.length + 1), 'E_CACHE_DIGEST_MISMATCH', BlobDigestError);
  assert.match(error.message, `the ${data.length} bytes received are not the ${data.length + 1} bytes expected`);
  assert.equal(filesUnder(cache.dir), []);
  assert.equal(await cache.fetch(client, 'any/repo', digest, data.length), { digest, size: data.length, downloaded: true });
});

test('a download that stalls half-way is E_REGISTRY_TIMEOUT and stores nothing', async () => {
  const client = new RegistryClient({ registry: proxy.host, retryDelayMs: 10, timeoutMs: 500 });
  try {
    const repo = `fib-test/cache-${randomBytes(4).toString('hex')}`;
    const data = randomBytes(50_000);
    stalled = { digest: (await client.pushBlob(repo, data)).digest, data };
    const cache = new BlobCache(join(dir, 'stalled'));
    await rejectsWith(cache.fetch(client, repo, stalled.digest, data.length), 'E_REGISTRY_TIMEOUT', RegistryError);
    assert.equal(filesUnder(cache.dir), [], 'no half blob, no temp file');
  } finally {
    stalled = undefined;
  }
});

test.run();
