// RegistryClient against the rig's real registries (distribution 2.8): anonymous, Basic, TLS and
// token auth, plus a fault proxy in front of a real registry for 503/429 answers, relative upload
// Locations and cross-host redirects. Every error message and log line produced here is kept and
// checked at the end for the passwords and tokens used.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { inspect } from 'node:util';
import { BuilderError } from '../../lib/errors.ts';
import { registryDigestResolver } from '../../lib/image/resolve-digest.ts';
import { RegistryClient, type RegistryClientOptions, type RegistryLogEvent } from '../../lib/registry/client.ts';
import { parseDockerConfig } from '../../lib/registry/credentials.ts';
import { RegistryError } from '../../lib/registry/errors.ts';
import { MEDIA_TYPE, sha256Digest } from '../../lib/registry/manifest.ts';
import { makeCa, makeLeaf } from '../support/certs.ts';
import { startFaultProxy, type FaultAnswer, type FaultProxy } from '../support/fault-proxy.ts';
import { startRegistry, type RegistryHandle } from '../support/registry.ts';

// ---- what every test leaves behind for the final secrets check ----
const captured: string[] = [];
const secrets = new Set<string>();
const events: RegistryLogEvent[] = [];

function client(options: RegistryClientOptions): RegistryClient {
  const made = new RegistryClient({
    retryDelayMs: 20,
    ...options,
    log: (event) => {
      events.push(event);
      captured.push(JSON.stringify(event));
    },
  });
  return made;
}

function keepSecret(...values: Array<string | undefined>): void {
  for (const value of values) if (value) secrets.add(value);
}

function basicConfig(key: string, username: string, password: string) {
  keepSecret(password, Buffer.from(`${username}:${password}`).toString('base64'));
  return parseDockerConfig({ auths: { [key]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } } });
}

async function failure(promise: Promise<unknown>, code: string): Promise<RegistryError> {
  try {
    await promise;
  } catch (error) {
    captured.push(String((error as Error).message), JSON.stringify(error), inspect(error, { depth: 10 }), String((error as Error).stack));
    assert.instance(error, RegistryError, `expected a RegistryError, got ${inspect(error)}`);
    assert.is((error as RegistryError).code, code, (error as Error).message);
    return error as RegistryError;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

/** `promise`, or a rejection after `ms`: a test of a timeout fails instead of hanging when the timeout is gone. */
function withinDeadline<T>(promise: Promise<T>, what: string, ms = 5_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms)));
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * For an error built from what a registry echoed back: the message, the JSON a Job prints and the
 * client's log lines hold none of `values`, and show where something was cut out.
 */
function assertScrubbed(error: RegistryError, values: string[], registryHost: string, since: number): void {
  const json = JSON.stringify(error);
  const lines = events.slice(since).filter((e) => e.registry === registryHost).map((e) => JSON.stringify(e));
  assert.ok(lines.length > 0, 'the client logged something');
  for (const text of [error.message, json, inspect(error, { depth: 10 }), ...lines]) {
    for (const value of values) assert.not.ok(text.includes(value), `a secret leaked into: ${text.slice(0, 300)}`);
  }
  assert.ok(error.message.includes('<redacted>'), error.message);
  assert.ok(json.includes('<redacted>'), json);
}

function unique(prefix: string): string {
  return `fib-test/${prefix}-${randomBytes(4).toString('hex')}`;
}

/** Pushes a config, one layer and a manifest for them (Docker v2, or OCI with `oci`); returns the manifest digest. */
async function pushImage(
  registry: RegistryClient,
  repository: string,
  tag: string,
  options: { oci?: boolean; architecture?: string } = {},
): Promise<{ digest: string; layer: Buffer; layerDigest: string }> {
  const types = options.oci
    ? { manifest: MEDIA_TYPE.ociManifest, config: MEDIA_TYPE.ociConfig, layer: MEDIA_TYPE.ociLayerGzip }
    : { manifest: MEDIA_TYPE.dockerManifest, config: MEDIA_TYPE.dockerConfig, layer: MEDIA_TYPE.dockerLayerGzip };
  const layer = randomBytes(2048);
  const config = Buffer.from(JSON.stringify({ architecture: options.architecture ?? 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  await registry.pushBlob(repository, config);
  const pushed = await registry.pushBlob(repository, layer);
  const manifest = {
    schemaVersion: 2,
    mediaType: types.manifest,
    config: { mediaType: types.config, digest: sha256Digest(config), size: config.length },
    layers: [{ mediaType: types.layer, digest: pushed.digest, size: layer.length }],
  };
  const { digest } = await registry.putManifest(repository, tag, manifest);
  return { digest, layer, layerDigest: pushed.digest };
}

async function* pieces(data: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

/**
 * What every kind of registry must support, in the order a push and a pull use it: monolithic and
 * chunked blob uploads, an existing blob skipped, manifest PUT by tag and by digest, HEAD by tag and
 * by digest, GET verified, tags listed, and a cross-repository mount answered 201.
 */
async function roundTrip(registry: RegistryClient, prefix: string): Promise<{ repo: string; mountedTo: string }> {
  const repo = unique(prefix);
  const { digest, layer, layerDigest } = await pushImage(registry, repo, 'v1');
  assert.equal(await registry.blobExists(repo, layerDigest), { size: layer.length });
  assert.ok((await registry.getBlob(repo, layerDigest)).equals(layer));
  assert.equal(await registry.pushBlob(repo, layer), { digest: layerDigest, size: layer.length, outcome: 'existed' });

  const big = randomBytes(150_000);
  assert.equal(await registry.pushBlob(repo, big, { chunkSize: 64 * 1024 }), { digest: sha256Digest(big), size: big.length, outcome: 'uploaded' });
  assert.ok((await registry.getBlob(repo, sha256Digest(big))).equals(big));

  const byTag = await registry.manifestExists(repo, 'v1');
  assert.equal(byTag, { digest, mediaType: MEDIA_TYPE.dockerManifest, size: byTag!.size });
  assert.equal(await registry.manifestExists(repo, digest), byTag);
  const got = await registry.getManifest(repo, 'v1');
  assert.equal([got.digest, sha256Digest(got.bytes), got.size, got.json.schemaVersion], [digest, digest, byTag!.size, 2]);
  assert.is((await registry.putManifest(repo, 'v2', got.bytes)).digest, digest);
  assert.is((await registry.putManifest(repo, digest, got.bytes)).digest, digest);
  assert.equal((await registry.listTags(repo)).sort(), ['v1', 'v2']);

  const mountedTo = unique(`${prefix}-mount`);
  assert.equal(await registry.mountBlob(mountedTo, layerDigest, repo), { mounted: true });
  assert.equal(await registry.blobExists(mountedTo, layerDigest), { size: layer.length });
  return { repo, mountedTo };
}

// ================================================================ anonymous
const anonymous = suite('anonymous registry');
let anon: RegistryHandle;
const proxies: FaultProxy[] = [];

anonymous.before(async () => {
  anon = await startRegistry('anonymous');
});
anonymous.after(async () => {
  for (const proxy of proxies.splice(0)) await proxy.stop();
  await anon?.stop();
});

anonymous('ping; every operation (roundTrip); an async-iterable source; a blob not pushed', async () => {
  const registry = client({ registry: anon.host });
  assert.equal(await registry.ping(), { authScheme: 'none', apiVersion: 'registry/2.0' });
  const { repo } = await roundTrip(registry, 'anon');

  const streamed = randomBytes(100_000);
  const fromIterable = await registry.pushBlob(repo, pieces(streamed, 7000), { chunkSize: 30_000 });
  assert.equal(fromIterable, { digest: sha256Digest(streamed), size: streamed.length, outcome: 'uploaded' });
  assert.equal(await registry.blobExists(repo, fromIterable.digest), { size: streamed.length });
  assert.is(await registry.blobExists(repo, sha256Digest('not pushed')), undefined);
});

anonymous('cross-repository mount: 202 opens an upload that is then used; pushBlob with mountFrom mounts', async () => {
  const registry = client({ registry: anon.host });
  const source = unique('mount-from');
  const data = randomBytes(5000);
  await registry.pushBlob(source, data);

  const missing = randomBytes(3000);
  const result = await registry.mountBlob(unique('mount-to'), sha256Digest(missing), source);
  assert.is(result.mounted, false);
  const other = unique('mount-fallback');
  const pushed = await registry.pushBlob(other, missing, { mountFrom: source });
  assert.equal(pushed, { digest: sha256Digest(missing), size: 3000, outcome: 'uploaded' });
  const mounted = await registry.pushBlob(unique('mount-again'), data, { mountFrom: source });
  assert.is(mounted.outcome, 'mounted');
});

anonymous('tags list pagination follows Link headers, relative and absolute', async () => {
  // distribution 2.8 ignores `n`, so the proxy pages the way newer registries (and Hub) do.
  let origin = '';
  const proxy = await startFaultProxy(anon.url, {
    intercept: (req) => {
      if (!req.url?.includes('/tags/list')) return undefined;
      const last = new URL(req.url, 'http://x').searchParams.get('last');
      const json = (tags: string[]) => JSON.stringify({ name: 'fib-test/paged', tags });
      if (last === null) return { status: 200, headers: { link: '</v2/fib-test/paged/tags/list?n=2&last=b>; rel="next"' }, body: json(['a', 'b']) };
      if (last === 'b') return { status: 200, headers: { link: `<${origin}/v2/fib-test/paged/tags/list?n=2&last=d>; rel="next"` }, body: json(['c', 'd']) };
      return { status: 200, body: json(['e']) };
    },
  });
  proxies.push(proxy);
  origin = proxy.url;
  const registry = client({ registry: proxy.host });
  assert.equal(await registry.listTags('fib-test/paged', { pageSize: 2 }), ['a', 'b', 'c', 'd', 'e']);
  assert.equal(
    proxy.requests.map((r) => r.path),
    ['/v2/fib-test/paged/tags/list?n=2', '/v2/fib-test/paged/tags/list?n=2&last=b', '/v2/fib-test/paged/tags/list?n=2&last=d'],
  );
});

anonymous('a reset connection is retried for a GET', async () => {
  const repo = unique('reset');
  const { layer, layerDigest } = await pushImage(client({ registry: anon.host }), repo, 'v1');
  const proxy = await startFaultProxy(anon.url, { intercept: (req, n) => (req.url?.includes('/blobs/') && n === 1 ? { status: 0, reset: true } : undefined) });
  proxies.push(proxy);
  const registry = client({ registry: proxy.host });
  assert.ok((await registry.getBlob(repo, layerDigest)).equals(layer));
  assert.equal(proxy.requests.map((r) => r.status), [0, 200]);
});

anonymous('resolveDigest: a plain manifest is its own digest, an index gives the platform entry', async () => {
  const registry = client({ registry: anon.host });
  const repo = unique('index');
  const amd64 = await pushImage(registry, repo, 'amd64');
  const arm64 = await pushImage(registry, repo, 'arm64');
  assert.is(await registry.resolveDigest(repo, 'amd64'), amd64.digest);
  const size = async (digest: string) => (await registry.manifestExists(repo, digest))!.size;
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.ociIndex,
    manifests: [
      { mediaType: MEDIA_TYPE.dockerManifest, digest: arm64.digest, size: await size(arm64.digest), platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { mediaType: MEDIA_TYPE.dockerManifest, digest: amd64.digest, size: await size(amd64.digest), platform: { os: 'linux', architecture: 'amd64' } },
    ],
  };
  const put = await registry.putManifest(repo, 'multi', index);
  assert.equal(await registry.manifestExists(repo, 'multi'), { digest: put.digest, mediaType: MEDIA_TYPE.ociIndex, size: JSON.stringify(index).length });
  assert.is(await registry.resolveDigest(repo, 'multi'), amd64.digest);
  assert.is(await registry.resolveDigest(repo, 'multi', 'linux/arm64'), arm64.digest);
  const error = await failure(registry.resolveDigest(repo, 'multi', 'linux/s390x'), 'E_REGISTRY_PLATFORM_NOT_FOUND');
  assert.ok(error.message.includes('linux/arm64/v8, linux/amd64'), error.message);
  const notFound = await failure(registry.resolveDigest(repo, 'nope'), 'E_REGISTRY_NOT_FOUND');
  assert.ok(notFound.message.includes(`${repo}:nope`), notFound.message);
});

anonymous('HEAD and GET accept all four manifest types; an OCI image manifest and a Docker manifest list are stored and read back', async () => {
  const proxy = await startFaultProxy(anon.url);
  proxies.push(proxy);
  const registry = client({ registry: proxy.host });
  const repo = unique('types');
  const oci = await pushImage(registry, repo, 'oci', { oci: true });
  const ociHead = await registry.manifestExists(repo, 'oci');
  assert.equal(ociHead, { digest: oci.digest, mediaType: MEDIA_TYPE.ociManifest, size: ociHead!.size });
  const ociManifest = await registry.getManifest(repo, 'oci');
  assert.equal([ociManifest.digest, ociManifest.mediaType], [oci.digest, MEDIA_TYPE.ociManifest]);
  assert.is(await registry.resolveDigest(repo, 'oci'), oci.digest);

  const amd64 = await pushImage(registry, repo, 'amd64');
  const arm = await pushImage(registry, repo, 'arm', { architecture: 'arm' });
  const entry = async (digest: string, platform: { os: string; architecture: string; variant?: string }) => ({
    mediaType: MEDIA_TYPE.dockerManifest,
    digest,
    size: (await registry.manifestExists(repo, digest))!.size,
    platform,
  });
  const list = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.dockerManifestList,
    manifests: [await entry(arm.digest, { os: 'linux', architecture: 'arm', variant: 'v7' }), await entry(amd64.digest, { os: 'linux', architecture: 'amd64' })],
  };
  const put = await registry.putManifest(repo, 'list', list);
  assert.equal(await registry.manifestExists(repo, 'list'), { digest: put.digest, mediaType: MEDIA_TYPE.dockerManifestList, size: JSON.stringify(list).length });
  const got = await registry.getManifest(repo, 'list');
  assert.is(got.mediaType, MEDIA_TYPE.dockerManifestList);
  assert.equal(got.json, list);
  assert.is(await registry.resolveDigest(repo, 'list'), amd64.digest);
  assert.is(await registry.resolveDigest(repo, 'list', 'linux/arm'), arm.digest, 'arm means arm/v7');
  await failure(registry.resolveDigest(repo, 'list', 'linux/arm64'), 'E_REGISTRY_PLATFORM_NOT_FOUND');

  const reads = proxy.requests.filter((r) => (r.method === 'HEAD' || r.method === 'GET') && r.path.includes('/manifests/'));
  assert.equal([...new Set(reads.map((r) => r.method))].sort(), ['GET', 'HEAD']);
  const all = [MEDIA_TYPE.dockerManifest, MEDIA_TYPE.ociManifest, MEDIA_TYPE.dockerManifestList, MEDIA_TYPE.ociIndex].sort();
  for (const read of reads) assert.equal(read.accept?.split(',').map((t) => t.trim().split(';')[0]).sort(), all, `${read.method} ${read.path}`);
});

anonymous('putManifest with an explicit media type, with none at all, and to a registry claiming another digest; a HEAD without headers falls back to GET', async () => {
  const proxy = await startFaultProxy(anon.url, {
    intercept: (req): FaultAnswer | undefined => {
      if (req.method === 'PUT' && req.url?.endsWith('/manifests/lying')) return { status: 201, headers: { 'docker-content-digest': sha256Digest('something else') } };
      if (req.method === 'HEAD' && req.url?.endsWith('/manifests/bare')) return { status: 200, headers: { 'content-type': 'text/plain' } };
      return undefined;
    },
  });
  proxies.push(proxy);
  const registry = client({ registry: proxy.host });
  const repo = unique('put-branches');
  const { digest } = await pushImage(registry, repo, 'v1', { oci: true });
  const { mediaType: _type, ...untyped } = (await registry.getManifest(repo, 'v1')).json;
  const explicit = await registry.putManifest(repo, 'explicit', untyped, MEDIA_TYPE.ociManifest);
  assert.equal(await registry.manifestExists(repo, 'explicit'), { digest: explicit.digest, mediaType: MEDIA_TYPE.ociManifest, size: JSON.stringify(untyped).length });
  assert.equal(proxy.requests.filter((r) => r.method === 'PUT' && r.path.endsWith('/manifests/explicit')).map((r) => r.status), [201]);

  const puts = proxy.requests.length;
  try {
    await registry.putManifest(repo, 'untyped', untyped);
    assert.unreachable('a manifest without a media type is refused');
  } catch (error) {
    assert.instance(error, BuilderError);
    assert.is((error as BuilderError).code, 'E_MANIFEST_MEDIA_TYPE');
    assert.ok((error as Error).message.includes(`${repo}:untyped`), (error as Error).message);
  }
  assert.is(proxy.requests.length, puts, 'nothing was sent');

  const lying = await failure(registry.putManifest(repo, 'lying', (await registry.getManifest(repo, 'v1')).bytes), 'E_REGISTRY_DIGEST_MISMATCH');
  assert.ok(lying.message.includes(sha256Digest('something else')) && lying.message.includes(digest), lying.message);

  await registry.putManifest(repo, 'bare', (await registry.getManifest(repo, 'v1')).bytes);
  const bare = await registry.manifestExists(repo, 'bare');
  assert.equal(bare, { digest, mediaType: MEDIA_TYPE.ociManifest, size: bare!.size });
  assert.equal(proxy.requests.filter((r) => r.path.endsWith('/manifests/bare')).map((r) => r.method), ['PUT', 'HEAD', 'GET']);
});

anonymous('missing things: HEAD is undefined, GET and tags list are E_REGISTRY_NOT_FOUND with the registry code', async () => {
  const registry = client({ registry: anon.host });
  const repo = unique('missing');
  assert.is(await registry.manifestExists(repo, 'v1'), undefined);
  const manifest = await failure(registry.getManifest(repo, 'v1'), 'E_REGISTRY_NOT_FOUND');
  assert.is(manifest.kind, 'user');
  assert.ok(manifest.message.includes(anon.host) && manifest.message.includes(repo) && manifest.message.includes('pull manifest'), manifest.message);
  assert.ok(manifest.registryErrors.length > 0 && /UNKNOWN/.test(manifest.registryErrors[0]!.code), JSON.stringify(manifest.registryErrors));
  await failure(registry.listTags(repo), 'E_REGISTRY_NOT_FOUND');
  await failure(registry.getBlob(repo, sha256Digest('x')), 'E_REGISTRY_NOT_FOUND');
});

anonymous('relative upload Locations (monolithic and chunked) through a proxy', async () => {
  const proxy = await startFaultProxy(anon.url, { relativeLocations: true });
  proxies.push(proxy);
  const registry = client({ registry: proxy.host });
  const repo = unique('relative');
  const data = randomBytes(50_000);
  assert.is((await registry.pushBlob(repo, data)).outcome, 'uploaded');
  const chunked = randomBytes(50_000);
  assert.is((await registry.pushBlob(repo, chunked, { chunkSize: 20_000 })).outcome, 'uploaded');
  assert.ok((await registry.getBlob(repo, sha256Digest(chunked))).equals(chunked));
  assert.is(proxy.requests.filter((r) => r.method === 'PATCH').length, 3);
  assert.ok(proxy.requests.filter((r) => r.method === 'PUT').every((r) => r.path.includes('digest=sha256%3A') && r.status === 201));
});

anonymous('503 twice then 200 succeeds after two retries; 404 is never retried', async () => {
  const repo = unique('flaky');
  const seed = client({ registry: anon.host });
  const { digest } = await pushImage(seed, repo, 'v1');
  const proxy = await startFaultProxy(anon.url, {
    intercept: (req, n) => (req.method === 'HEAD' && req.url?.endsWith('/manifests/v1') && n <= 2 ? { status: 503 } : undefined),
  });
  proxies.push(proxy);
  const before = events.length;
  const registry = client({ registry: proxy.host, retries: 3 });
  assert.is((await registry.manifestExists(repo, 'v1'))?.digest, digest);
  assert.equal(
    proxy.requests.filter((r) => r.path.endsWith('/manifests/v1')).map((r) => r.status),
    [503, 503, 200],
  );
  assert.is(events.slice(before).filter((e) => e.event === 'retry').length, 2);
  assert.is(await registry.manifestExists(repo, 'v404'), undefined);
  assert.is(proxy.requests.filter((r) => r.path.endsWith('/manifests/v404')).length, 1);
});

anonymous('429 with Retry-After is honoured; a Retry-After beyond the limit fails at once with E_REGISTRY_RATE_LIMITED', async () => {
  const repo = unique('limited');
  const proxy = await startFaultProxy(anon.url, {
    intercept: (req, n) => {
      if (req.url?.endsWith('/tags/list') && n === 1) return { status: 429, headers: { 'retry-after': '1' }, body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}' };
      if (req.url?.includes('/manifests/')) return { status: 429, headers: { 'retry-after': '3600' }, body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}' };
      return undefined;
    },
  });
  proxies.push(proxy);
  const registry = client({ registry: proxy.host });
  await pushImage(client({ registry: anon.host }), repo, 'v1');
  assert.equal(await registry.listTags(repo), ['v1']);
  const tagLists = proxy.requests.filter((r) => r.path.includes('/tags/list'));
  assert.equal(tagLists.map((r) => r.status), [429, 200]);
  // Timers may fire a few ms early by the clock that stamped the arrivals; retryDelayMs alone would be ~20 ms.
  const waited = tagLists[1]!.at - tagLists[0]!.at;
  assert.ok(waited >= 990 && waited < 3_000, `the retry came ${Math.round(waited)} ms after the 429`);
  const error = await failure(registry.getManifest(repo, 'v1'), 'E_REGISTRY_RATE_LIMITED');
  assert.is(error.kind, 'infrastructure');
  assert.ok(error.message.includes('3600 s') && error.message.includes('pull rate limit'), error.message);
  assert.is(proxy.requests.filter((r) => r.path.includes('/manifests/')).length, 1);
});

anonymous('backoff grows: four 503s then a 200 arrive further and further apart', async () => {
  const repo = unique('backoff');
  const { digest } = await pushImage(client({ registry: anon.host }), repo, 'v1');
  const proxy = await startFaultProxy(anon.url, {
    intercept: (req, n) => (req.method === 'HEAD' && req.url?.endsWith('/manifests/v1') && n <= 4 ? { status: 503 } : undefined),
  });
  proxies.push(proxy);
  const base = 100;
  const registry = client({ registry: proxy.host, retries: 4, retryDelayMs: base });
  assert.is((await registry.manifestExists(repo, 'v1'))?.digest, digest);
  const arrivals = proxy.requests.filter((r) => r.path.endsWith('/manifests/v1'));
  assert.equal(arrivals.map((r) => r.status), [503, 503, 503, 503, 200]);
  const gaps = arrivals.slice(1).map((r, i) => r.at - arrivals[i]!.at);
  const shown = gaps.map((g) => Math.round(g)).join(', ');
  // Retry k waits base·2^(k-1) less up to half of it as jitter: 50-100, 100-200, 200-400, 400-800 ms.
  // Neighbouring ranges touch, so "longer than the one before" allows a few ms of timer noise.
  gaps.forEach((gap, k) => assert.ok(gap >= (base * 2 ** k) / 2 - 5, `gap ${k + 1} too short: ${shown} ms`));
  for (let k = 1; k < gaps.length; k++) assert.ok(gaps[k]! > gaps[k - 1]! - 10, `gaps do not grow: ${shown} ms`);
  assert.ok(gaps[3]! >= 3 * gaps[0]!, `gaps do not grow: ${shown} ms`);
});

anonymous('a registry that keeps failing gives E_REGISTRY_UNAVAILABLE after bounded retries', async () => {
  const proxy = await startFaultProxy(anon.url, { intercept: () => ({ status: 502, body: 'bad gateway' }) });
  proxies.push(proxy);
  const registry = client({ registry: proxy.host, retries: 2 });
  const error = await failure(registry.blobExists(unique('down'), sha256Digest('x')), 'E_REGISTRY_UNAVAILABLE');
  assert.is(error.status, 502);
  assert.is(proxy.requests.length, 3);
});

anonymous('never retried: a 403 and a 404 go once; a 503 or a reset on a PATCH or on the upload-closing PUT is not sent again', async () => {
  const proxy = await startFaultProxy(anon.url, {
    intercept: (req) => {
      const url = req.url ?? '';
      if (url.endsWith('/manifests/forbidden')) return { status: 403, body: '{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}' };
      if (url.endsWith('/manifests/gone')) return { status: 404, body: '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}' };
      if (req.method === 'PATCH' && url.includes('/patch-503-')) return { status: 503, body: '{"errors":[{"code":"UNAVAILABLE","message":"storage busy"}]}' };
      if (req.method === 'PATCH' && url.includes('/patch-reset-')) return { status: 0, reset: true };
      if (req.method === 'PUT' && url.includes('/put-503-') && url.includes('digest=')) return { status: 503, body: 'busy' };
      return undefined;
    },
  });
  proxies.push(proxy);
  const before = events.length;
  const registry = client({ registry: proxy.host, retries: 3 });
  const sent = (method: string, part: string) => proxy.requests.filter((r) => r.method === method && r.path.includes(part)).length;

  const repo = unique('no-retry');
  const denied = await failure(registry.manifestExists(repo, 'forbidden'), 'E_REGISTRY_DENIED');
  assert.ok(denied.message.includes('check manifest') && denied.message.includes(repo), denied.message);
  assert.is(sent('HEAD', '/manifests/forbidden'), 1);
  await failure(registry.getManifest(repo, 'gone'), 'E_REGISTRY_NOT_FOUND');
  assert.is(sent('GET', '/manifests/gone'), 1);

  const patched = await failure(registry.pushBlob(unique('patch-503'), randomBytes(3000), { chunkSize: 1000 }), 'E_REGISTRY_UNAVAILABLE');
  assert.is(patched.status, 503);
  assert.ok(patched.message.includes('push blob') && patched.message.includes('storage busy'), patched.message);
  assert.is(sent('PATCH', '/patch-503-'), 1);
  await failure(registry.pushBlob(unique('put-503'), randomBytes(3000)), 'E_REGISTRY_UNAVAILABLE');
  assert.is(sent('PUT', '/put-503-'), 1);
  const reset = await failure(registry.pushBlob(unique('patch-reset'), randomBytes(3000), { chunkSize: 1000 }), 'E_REGISTRY_UNREACHABLE');
  assert.is(reset.details.attempts, 1);
  assert.is(sent('PATCH', '/patch-reset-'), 1);
  assert.equal(events.slice(before).filter((e) => e.event === 'retry'), []);
});

anonymous('a stopped registry gives E_REGISTRY_UNREACHABLE after bounded retries', async () => {
  const stopped = await startRegistry('anonymous');
  await stopped.stop();
  const before = events.length;
  const registry = client({ registry: stopped.host, retries: 2 });
  const started = Date.now();
  const error = await failure(registry.manifestExists('fib-test/gone', 'v1'), 'E_REGISTRY_UNREACHABLE');
  assert.ok(Date.now() - started < 5_000);
  assert.is(error.kind, 'infrastructure');
  assert.is(error.details.attempts, 3);
  assert.ok(error.message.includes(stopped.host) && error.message.includes('ECONNREFUSED'), error.message);
  assert.is(events.slice(before).filter((e) => e.event === 'retry').length, 2);
});

anonymous('a registry that accepts but never answers times out with E_REGISTRY_TIMEOUT', async () => {
  const sockets = new Set<Socket>();
  const silent = createTcpServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    const port = (silent.address() as { port: number }).port;
    const registry = client({ registry: `127.0.0.1:${port}`, timeoutMs: 300, retries: 1 });
    const started = Date.now();
    const error = await failure(withinDeadline(registry.ping(), 'ping'), 'E_REGISTRY_TIMEOUT');
    assert.ok(Date.now() - started < 3_000);
    assert.is(error.details.attempts, 2);
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});

anonymous('a body that stalls mid-transfer (manifest, blob) or a manifest never answered ends in E_REGISTRY_TIMEOUT in bounded time', async () => {
  const repo = unique('stall');
  const seed = client({ registry: anon.host });
  const { layer, layerDigest } = await pushImage(seed, repo, 'v1');
  const manifest = await seed.getManifest(repo, 'v1');
  const proxy = await startFaultProxy(anon.url, {
    intercept: (req) => {
      const url = req.url ?? '';
      if (req.method !== 'GET') return undefined;
      const headers = (type: string, digest: string) => ({ 'content-type': type, 'docker-content-digest': digest });
      if (url.endsWith('/manifests/v1')) return { status: 200, headers: headers(manifest.mediaType, manifest.digest), body: manifest.bytes, stallAfter: manifest.size >> 1 };
      if (url.endsWith(`/blobs/${layerDigest}`)) return { status: 200, headers: headers('application/octet-stream', layerDigest), body: layer, stallAfter: layer.length >> 1 };
      if (url.endsWith('/manifests/silent')) return { status: 0, hang: true };
      return undefined;
    },
  });
  proxies.push(proxy);
  const registry = client({ registry: proxy.host, timeoutMs: 300, retries: 1 });
  const timed = async (what: string, operation: Promise<unknown>) => {
    const started = performance.now();
    const error = await failure(withinDeadline(operation, what), 'E_REGISTRY_TIMEOUT');
    const took = performance.now() - started;
    assert.ok(took >= 250 && took < 3_000, `${what}: failed after ${Math.round(took)} ms`);
    assert.is(error.kind, 'infrastructure');
    assert.ok(error.message.includes(repo) && error.message.includes('timeoutMs'), error.message);
    return error;
  };
  await timed('stalled manifest body', registry.getManifest(repo, 'v1'));
  await timed('stalled blob body', registry.getBlob(repo, layerDigest));
  const silent = await timed('manifest never answered', registry.getManifest(repo, 'silent'));
  assert.is(silent.details.attempts, 2);
  assert.is(proxy.requests.filter((r) => r.path.endsWith('/manifests/silent')).length, 2);
});

anonymous.run();

// ================================================================ basic
const basic = suite('Basic auth registry');
let basicRegistry: RegistryHandle;
basic.before(async () => {
  basicRegistry = await startRegistry('basic');
  keepSecret(basicRegistry.password, Buffer.from(`${basicRegistry.username}:${basicRegistry.password}`).toString('base64'));
});
basic.after(async () => {
  for (const proxy of proxies.splice(0)) await proxy.stop();
  await basicRegistry?.stop();
});

basic('the Secret from the rig: every operation (roundTrip); the key used is logged', async () => {
  const before = events.length;
  const registry = client({ registry: basicRegistry.host, credentials: parseDockerConfig(basicRegistry.dockerConfigJson!) });
  assert.is(registry.credentialKey, basicRegistry.host);
  assert.is((await registry.ping()).authScheme, 'basic');
  await roundTrip(registry, 'basic');
  const used = events.slice(before).find((e) => e.event === 'credentials');
  assert.equal(used, { registry: basicRegistry.host, event: 'credentials', level: 'info', key: basicRegistry.host, type: 'basic' });
});

basic('registryDigestResolver pins a rig image by tag, logs the docker config key used and the config warnings, and stops on its signal', async () => {
  const repo = unique('resolver');
  const { digest } = await pushImage(client({ registry: basicRegistry.host, credentials: parseDockerConfig(basicRegistry.dockerConfigJson!) }), repo, 'v1');
  const dockerConfig = parseDockerConfig({ ...JSON.parse(basicRegistry.dockerConfigJson!), credsStore: 'desktop' });
  const logged: RegistryLogEvent[] = [];
  const log = (event: RegistryLogEvent) => {
    logged.push(event);
    captured.push(JSON.stringify(event));
  };
  const resolve = registryDigestResolver({ dockerConfig, log });
  assert.is(await resolve(`${basicRegistry.host}/${repo}:v1`), `${basicRegistry.host}/${repo}@${digest}`);
  assert.equal(logged.find((e) => e.event === 'credentials'), { registry: basicRegistry.host, event: 'credentials', level: 'info', key: basicRegistry.host, type: 'basic' });
  assert.ok(logged.some((e) => e.event === 'config-warning' && String(e.message).includes('credsStore')), JSON.stringify(logged));

  const aborted = new AbortController();
  aborted.abort(new Error('build cancelled'));
  const count = logged.length;
  try {
    await registryDigestResolver({ dockerConfig, log, signal: aborted.signal })(`${basicRegistry.host}/${repo}:v1`);
    assert.unreachable('an aborted signal stops the resolution');
  } catch (error) {
    assert.is((error as Error).message, 'build cancelled');
  }
  assert.not.ok(logged.slice(count).some((e) => e.event === 'retry'), 'an aborted request is not retried');
});

basic('a config with Docker Hub and two private registries: the http:// key is used, and it means plain HTTP', async () => {
  const key = `http://${basicRegistry.host}/v2`;
  keepSecret('hub-password-123', 'other-password-456');
  const config = parseDockerConfig({
    auths: {
      'https://index.docker.io/v1/': { username: 'hubuser', password: 'hub-password-123' },
      [key]: { username: basicRegistry.username, password: basicRegistry.password },
      'registry.example.com:5000': { username: 'other', password: 'other-password-456' },
    },
  });
  const registry = client({ registry: basicRegistry.host, credentials: config });
  assert.is(registry.credentialKey, key);
  assert.is(registry.endpoint.origin, basicRegistry.url);
  assert.ok(registry.endpoint.reason.includes(key));
  assert.is(await registry.manifestExists(unique('three'), 'v1'), undefined);
  assert.is(client({ registry: 'index.docker.io', credentials: config }).credentialKey, 'https://index.docker.io/v1/');
});

basic('wrong password → E_REGISTRY_UNAUTHORIZED naming the key tried; no matching key → says so and lists the keys', async () => {
  const wrong = `wrong-${randomBytes(6).toString('hex')}`;
  const key = `${basicRegistry.host}/v2/`;
  const registry = client({ registry: basicRegistry.host, credentials: basicConfig(key, basicRegistry.username!, wrong) });
  const repo = unique('wrong');
  const error = await failure(registry.manifestExists(repo, 'v1'), 'E_REGISTRY_UNAUTHORIZED');
  assert.is(error.kind, 'user');
  assert.ok(error.message.includes(`"${key}"`), error.message);
  assert.ok(error.message.includes(basicRegistry.host) && error.message.includes(repo), error.message);
  assert.is(error.details.credentialKey, key);
  assert.not.ok(events.some((e) => e.event === 'retry' && e.registry === basicRegistry.host), '401 is never retried');

  const none = client({ registry: basicRegistry.host, credentials: basicConfig('ghcr.io', 'u', 'ghcr-password-789') });
  const missing = await failure(none.pushBlob(repo, Buffer.from('x')), 'E_REGISTRY_UNAUTHORIZED');
  assert.ok(missing.message.includes(`no docker config key matches ${basicRegistry.host} (keys: "ghcr.io")`), missing.message);
  assert.is(missing.details.credentialKey, null);
});

basic('a redirect to another host does not carry the Authorization header', async () => {
  const registry = client({ registry: basicRegistry.host, credentials: parseDockerConfig(basicRegistry.dockerConfigJson!) });
  const repo = unique('redirect');
  const data = randomBytes(4000);
  const digest = sha256Digest(data);
  const storageSaw: Array<string | undefined> = [];
  const storage: Server = createHttpServer((req, res) => {
    storageSaw.push(req.headers.authorization);
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    res.end(data);
  });
  await new Promise<void>((resolve) => storage.listen(0, '127.0.0.1', resolve));
  try {
    const storageUrl = `http://127.0.0.1:${(storage.address() as { port: number }).port}/blob?X-Signature=abc`;
    const proxy = await startFaultProxy(basicRegistry.url, {
      intercept: (req) => (req.method === 'GET' && req.url?.includes('/blobs/sha256:') && req.headers.authorization ? { status: 307, headers: { location: storageUrl } } : undefined),
    });
    proxies.push(proxy);
    const viaProxy = client({ registry: proxy.host, credentials: basicConfig(proxy.host, basicRegistry.username!, basicRegistry.password!) });
    await registry.pushBlob(repo, data);
    assert.ok((await viaProxy.getBlob(repo, digest)).equals(data));
    assert.equal(storageSaw, [undefined]);
    assert.ok(proxy.requests.some((r) => r.status === 307 && r.authorized));
    assert.ok(captured.every((line) => !line.includes('X-Signature')), 'query strings of redirects are not logged');
  } finally {
    await new Promise((resolve) => storage.close(resolve));
  }
});

basic('a redirect to HTTPS storage signed by the registry\'s private CA uses the registry\'s ca (no Authorization); storage signed by another CA → E_REGISTRY_TLS naming it; tlsVerify: false carries over', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fib-redirect-tls-'));
  const servers: Server[] = [];
  try {
    const privateCa = await makeCa(dir, 'private-ca');
    const otherCa = await makeCa(dir, 'other-ca');
    const leaf = (name: string, ca: typeof privateCa) => makeLeaf(dir, name, ca, { commonName: 'localhost', usage: 'server' });
    const [front, storageCert, strangerCert] = await Promise.all([leaf('front', privateCa), leaf('storage', privateCa), leaf('stranger', otherCa)]);
    const repo = unique('redirect-tls');
    const data = randomBytes(4000);
    const digest = sha256Digest(data);
    await client({ registry: basicRegistry.host, credentials: parseDockerConfig(basicRegistry.dockerConfigJson!) }).pushBlob(repo, data);

    /** An HTTPS blob store that serves `data` and records the Authorization header of each request. */
    const startStorage = async (cert: typeof front) => {
      const saw: Array<string | undefined> = [];
      const server = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
        saw.push(req.headers.authorization);
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(data);
      });
      servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return { saw, origin: `https://127.0.0.1:${(server.address() as { port: number }).port}` };
    };
    const storage = await startStorage(storageCert);
    const stranger = await startStorage(strangerCert);

    // The registry speaks HTTPS with a certificate from the private CA and redirects blob GETs.
    let storageOrigin = storage.origin;
    const proxy = await startFaultProxy(basicRegistry.url, {
      tls: { cert: front.certPem, key: front.keyPem },
      intercept: (req) =>
        req.method === 'GET' && req.url?.includes('/blobs/sha256:') && req.headers.authorization ? { status: 307, headers: { location: `${storageOrigin}/blob?X-Signature=abc` } } : undefined,
    });
    proxies.push(proxy);
    const credentials = basicConfig(proxy.host, basicRegistry.username!, basicRegistry.password!);

    const trusting = client({ registry: proxy.host, credentials, transport: { ca: privateCa.certPem } });
    assert.is(trusting.endpoint.origin, proxy.url);
    assert.ok((await trusting.getBlob(repo, digest)).equals(data), 'fetched from the storage host with the registry\'s CA');
    assert.equal(storage.saw, [undefined], 'the storage host got no Authorization');
    assert.ok(proxy.requests.some((r) => r.status === 307 && r.authorized), 'the registry itself did get credentials');

    // The ca setting is what makes the storage host trusted: a host signed by another CA is refused.
    storageOrigin = stranger.origin;
    const refused = await failure(trusting.getBlob(repo, digest), 'E_REGISTRY_TLS');
    assert.ok(refused.message.includes(`TLS to ${stranger.origin} failed`), refused.message);
    assert.not.ok(refused.message.includes('X-Signature'), refused.message);
    assert.equal(stranger.saw, [], 'no request got past the handshake');

    const unverified = client({ registry: proxy.host, credentials, transport: { tlsVerify: false } });
    assert.ok((await unverified.getBlob(repo, digest)).equals(data), 'tlsVerify: false covers the storage host too');
    assert.equal(stranger.saw, [undefined]);
  } finally {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

basic('every error body is read or dumped: 22 GETs mixing 401 handshakes, 404s and a 503 retry, all with 96 KiB bodies, keep to two connections per client', async () => {
  const repo = unique('keepalive');
  const known = randomBytes(3000);
  await client({ registry: basicRegistry.host, credentials: parseDockerConfig(basicRegistry.dockerConfigJson!) }).pushBlob(repo, known);
  const missing = sha256Digest('never pushed');
  const bigPage = `<html><body>${'busy '.repeat(96 * 1024 / 5)}</body></html>`;
  // undici buffers up to 64 KiB of a body nobody reads, so only bodies larger than that hold a connection.
  // Two connections is the floor: undici ends a body before it frees the socket, so the next request
  // goes out on the other one. HEADs are left out: their answers carry no body to forget.
  const proxy = await startFaultProxy(basicRegistry.url, {
    padErrorBodies: 96 * 1024,
    intercept: (req, n) => (req.method === 'GET' && req.url?.endsWith(`/blobs/${sha256Digest(known)}`) && n === 1 ? { status: 503, headers: { 'content-type': 'text/html' }, body: bigPage } : undefined),
  });
  proxies.push(proxy);

  const registry = client({ registry: proxy.host, credentials: basicConfig(proxy.host, basicRegistry.username!, basicRegistry.password!) });
  const first = await failure(registry.getBlob(repo, missing), 'E_REGISTRY_NOT_FOUND');
  assert.is(first.registryErrors[0]?.code, 'BLOB_UNKNOWN', 'the padded body is still the registry\'s JSON');
  // Early, so that a 503 body left unread would hold its connection for the requests after it.
  assert.ok((await registry.getBlob(repo, sha256Digest(known))).equals(known));
  for (let i = 0; i < 5; i++) {
    await failure(registry.getBlob(repo, missing), 'E_REGISTRY_NOT_FOUND');
    await failure(registry.getManifest(repo, 'missing'), 'E_REGISTRY_NOT_FOUND');
    await failure(registry.listTags(unique('no-such-repo')), 'E_REGISTRY_NOT_FOUND');
  }
  const statuses = proxy.requests.map((r) => r.status);
  assert.is(statuses.length, 19);
  assert.equal([statuses.filter((s) => s === 401).length, statuses.filter((s) => s === 404).length, statuses.filter((s) => s === 503).length], [1, 16, 1]);
  assert.ok(proxy.connections <= 2, `the client opened ${proxy.connections} connections for ${statuses.length} requests`);

  // A wrong password: every request ends in a 401 whose body is read for the error message. The Basic
  // challenge is known from the first client (shared in the process), so none goes unauthenticated.
  const accepted = proxy.connections;
  const refused = client({ registry: proxy.host, credentials: basicConfig(proxy.host, basicRegistry.username!, 'wrong-password-keepalive') });
  for (let i = 0; i < 3; i++) await failure(refused.getBlob(repo, missing), 'E_REGISTRY_UNAUTHORIZED');
  assert.equal(proxy.requests.slice(19).map((r) => r.status), [401, 401, 401]);
  assert.ok(proxy.connections - accepted <= 2, `the refused client opened ${proxy.connections - accepted} connections for 3 requests`);
});

basic('a 401 whose error body echoes the Authorization value and the password is scrubbed from the message, the JSON and the log', async () => {
  const { username, password } = { username: basicRegistry.username!, password: basicRegistry.password! };
  const proxy = await startFaultProxy(basicRegistry.url, {
    intercept: (req) =>
      req.method === 'GET' && req.url?.includes('/blobs/') && req.headers.authorization
        ? { status: 401, body: JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: `refused "${req.headers.authorization}" (password ${password})` }] }) }
        : undefined,
  });
  proxies.push(proxy);
  const before = events.length;
  const registry = client({ registry: proxy.host, credentials: basicConfig(proxy.host, username, password) });
  const error = await failure(registry.getBlob(unique('echo'), sha256Digest('echo')), 'E_REGISTRY_UNAUTHORIZED');
  assert.ok(proxy.requests.some((r) => r.status === 401 && r.authorized), 'the echoing answer was sent');
  assert.is(error.registryErrors[0]?.code, 'UNAUTHORIZED');
  assertScrubbed(error, [password, Buffer.from(`${username}:${password}`).toString('base64')], proxy.host, before);
});

basic.run();

// ================================================================ tls
const tls = suite('TLS registry');
let tlsRegistry: RegistryHandle;
tls.before(async () => {
  tlsRegistry = await startRegistry('tls');
});
tls.after(async () => {
  await tlsRegistry?.stop();
});

tls('with its CA: every operation (roundTrip) over HTTPS', async () => {
  const registry = client({ registry: tlsRegistry.host, transport: { ca: tlsRegistry.caPem! } });
  assert.is(registry.endpoint.origin, tlsRegistry.url);
  await roundTrip(registry, 'tls-ca');
});

tls('with verification off: every operation (roundTrip) without the CA', async () => {
  const registry = client({ registry: tlsRegistry.host, transport: { tlsVerify: false } });
  assert.is(registry.endpoint.origin, tlsRegistry.url);
  await roundTrip(registry, 'tls-noverify');
});

tls('HTTPS without the CA → E_REGISTRY_TLS saying to give the CA; plain HTTP to it → E_REGISTRY_TLS too', async () => {
  const untrusted = client({ registry: tlsRegistry.host, transport: { insecure: false } });
  const error = await failure(untrusted.ping(), 'E_REGISTRY_TLS');
  assert.is(error.kind, 'user');
  assert.ok(error.message.includes('CA') && error.message.includes(tlsRegistry.host), error.message);
  assert.is(error.details.attempts, 1, 'certificate errors are not retried');
  const plain = client({ registry: tlsRegistry.host });
  assert.is(plain.endpoint.plainHttp, true);
  const wrongScheme = await failure(plain.manifestExists(unique('tls-plain'), 'v1'), 'E_REGISTRY_TLS');
  assert.ok(wrongScheme.message.includes('insecure: false'), wrongScheme.message);
});

tls.run();

// ================================================================ token
const token = suite('token auth registry');
let tokenRegistry: RegistryHandle;
token.before(async () => {
  tokenRegistry = await startRegistry('token');
  const { full, pullOnly } = tokenRegistry.users!;
  keepSecret(full.password, pullOnly.password);
  for (const user of [full, pullOnly]) keepSecret(Buffer.from(`${user.username}:${user.password}`).toString('base64'));
});
token.after(async () => {
  for (const proxy of proxies.splice(0)) await proxy.stop();
  await tokenRegistry?.stop();
});

function tokenConfig(user: { username: string; password: string }) {
  return basicConfig(tokenRegistry.host, user.username, user.password);
}

token('every operation (roundTrip) with push and pull scopes; tokens fetched per scope and reused', async () => {
  const server = tokenRegistry.tokenServer!;
  const fetchesBefore = server.requests.length;
  const before = events.length;
  // Through a proxy that counts the registry's answers: a token picked for the wrong scope would be
  // refused with a 401 and quietly fetched again, which only the 401 count shows.
  const proxy = await startFaultProxy(tokenRegistry.url);
  proxies.push(proxy);
  const { full } = tokenRegistry.users!;
  const registry = client({ registry: proxy.host, credentials: basicConfig(proxy.host, full.username, full.password) });
  const { repo, mountedTo: other } = await roundTrip(registry, 'token');

  const fetched = server.requests.slice(fetchesBefore);
  assert.ok(fetched.every((r) => r.status === 200 && r.username === tokenRegistry.users!.full.username));
  const tokenEvents = events.slice(before).filter((e) => e.event === 'token');
  const fresh = tokenEvents.filter((e) => e.cached === false).length;
  const reused = tokenEvents.filter((e) => e.cached === true).length;
  assert.is(fresh, fetched.length, 'every token fetched is logged');
  // pull (the first HEAD), pull+push (the first upload), and the mount's two repositories, which
  // also covers the HEAD on the mount target.
  assert.equal(
    fetched.map((r) => r.scopes),
    [[`repository:${repo}:pull`], [`repository:${repo}:pull,push`], [`repository:${other}:pull,push`, `repository:${repo}:pull`].sort()],
  );
  assert.equal(proxy.requests.filter((r) => r.status === 401).map((r) => r.method), ['HEAD'], 'only the first request, before any token, is refused');
  assert.is(proxy.requests.filter((r) => r.method === 'PATCH' && r.status === 202).length, 3, 'the chunked upload went in three PATCHes');
  assert.ok(reused >= 10, `reused ${reused} tokens`);
  assert.ok(fetched.some((r) => r.granted.some((g) => g.name === repo && g.actions.includes('push'))));
});

token('a pull-only user can pull, and pushing is E_REGISTRY_DENIED naming the key', async () => {
  const full = client({ registry: tokenRegistry.host, credentials: tokenConfig(tokenRegistry.users!.full) });
  const repo = unique('pull-only');
  const { digest } = await pushImage(full, repo, 'v1');
  const registry = client({ registry: tokenRegistry.host, credentials: tokenConfig(tokenRegistry.users!.pullOnly) });
  assert.is(await registry.resolveDigest(repo, 'v1'), digest);
  const error = await failure(registry.pushBlob(repo, randomBytes(100)), 'E_REGISTRY_DENIED');
  assert.is(error.kind, 'user');
  assert.ok(error.message.includes(`"${tokenRegistry.host}"`) && error.message.includes(repo) && error.message.includes('push blob'), error.message);
  await failure(registry.putManifest(repo, 'v2', (await full.getManifest(repo, 'v1')).bytes), 'E_REGISTRY_DENIED');
});

token('wrong password → E_REGISTRY_UNAUTHORIZED from the token server; no credentials → anonymous token, then unauthorized', async () => {
  const wrong = `wrong-${randomBytes(6).toString('hex')}`;
  const registry = client({ registry: tokenRegistry.host, credentials: basicConfig(`https://${tokenRegistry.host}`, tokenRegistry.users!.full.username, wrong) });
  // The key was written with https://, so ask for plain HTTP explicitly.
  const plain = client({
    registry: tokenRegistry.host,
    transport: { insecure: true },
    credentials: basicConfig(`https://${tokenRegistry.host}`, tokenRegistry.users!.full.username, wrong),
  });
  assert.is(registry.endpoint.plainHttp, false);
  const error = await failure(plain.manifestExists(unique('wrong'), 'v1'), 'E_REGISTRY_UNAUTHORIZED');
  assert.ok(error.message.includes(`"https://${tokenRegistry.host}"`), error.message);

  const server = tokenRegistry.tokenServer!;
  const before = server.requests.length;
  const anonymousClient = client({ registry: tokenRegistry.host });
  const denied = await failure(anonymousClient.manifestExists(unique('anon'), 'v1'), 'E_REGISTRY_UNAUTHORIZED');
  assert.ok(denied.message.includes('no docker config credentials were given'), denied.message);
  assert.equal(server.requests.slice(before).map((r) => [r.username, r.status]), [['', 200]], 'one anonymous token was asked for');
});

token('a public repository: an anonymous client pulls with one anonymous token; its push is E_REGISTRY_UNAUTHORIZED', async () => {
  const full = client({ registry: tokenRegistry.host, credentials: tokenConfig(tokenRegistry.users!.full) });
  const repo = unique('public');
  const { digest, layer, layerDigest } = await pushImage(full, repo, 'v1');
  const server = tokenRegistry.tokenServer!;
  server.publicRepositories.push(repo);
  const before = server.requests.length;
  const anonymousClient = client({ registry: tokenRegistry.host });
  assert.equal(await anonymousClient.ping(), { authScheme: 'bearer', apiVersion: 'registry/2.0' });
  assert.is(await anonymousClient.resolveDigest(repo, 'v1'), digest);
  assert.is((await anonymousClient.getManifest(repo, digest)).digest, digest);
  assert.ok((await anonymousClient.getBlob(repo, layerDigest)).equals(layer));
  const pullOnly = [{ type: 'repository', name: repo, actions: ['pull'] }];
  assert.equal(server.requests.slice(before).map((r) => [r.username, r.granted]), [['', pullOnly]], 'one anonymous token, reused for every pull');

  const error = await failure(anonymousClient.pushBlob(repo, randomBytes(100)), 'E_REGISTRY_UNAUTHORIZED');
  assert.ok(error.message.includes('no docker config credentials were given') && error.message.includes(repo), error.message);
  const pushToken = server.requests.slice(before + 1);
  assert.equal(pushToken.map((r) => [r.username, r.scopes, r.granted]), [['', [`repository:${repo}:pull,push`], pullOnly]]);
});

token('identitytoken: exchanged for access tokens with grant_type=refresh_token', async () => {
  const { full } = tokenRegistry.users!;
  const realm = new URL(tokenRegistry.tokenRealm!);
  realm.searchParams.set('service', tokenRegistry.tokenServer!.service);
  realm.searchParams.set('offline_token', 'true');
  const response = await fetch(realm, { headers: { authorization: `Basic ${Buffer.from(`${full.username}:${full.password}`).toString('base64')}` } });
  const { refresh_token: refresh, token: issued } = (await response.json()) as { refresh_token: string; token: string };
  keepSecret(refresh, issued);
  const server = tokenRegistry.tokenServer!;
  const before = server.requests.length;
  const registry = client({ registry: tokenRegistry.host, credentials: parseDockerConfig({ auths: { [tokenRegistry.host]: { identitytoken: refresh } } }) });
  const repo = unique('identity');
  const { digest } = await pushImage(registry, repo, 'v1');
  assert.is((await registry.manifestExists(repo, 'v1'))?.digest, digest);
  const asked = server.requests.slice(before);
  assert.ok(asked.length >= 1 && asked.every((r) => r.method === 'POST' && r.username === full.username && r.status === 200), JSON.stringify(asked));
});

token('registrytoken: sent as the Bearer token without asking the token server', async () => {
  const full = client({ registry: tokenRegistry.host, credentials: tokenConfig(tokenRegistry.users!.full) });
  const repo = unique('registrytoken');
  const { digest } = await pushImage(full, repo, 'v1');
  const { full: user } = tokenRegistry.users!;
  const realm = new URL(tokenRegistry.tokenRealm!);
  realm.searchParams.set('service', tokenRegistry.tokenServer!.service);
  realm.searchParams.set('scope', `repository:${repo}:pull`);
  const response = await fetch(realm, { headers: { authorization: `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}` } });
  const { token: bearer } = (await response.json()) as { token: string };
  keepSecret(bearer);
  const server = tokenRegistry.tokenServer!;
  const before = server.requests.length;
  const registry = client({ registry: tokenRegistry.host, credentials: parseDockerConfig({ auths: { [tokenRegistry.host]: { registrytoken: bearer } } }) });
  assert.is((await registry.manifestExists(repo, 'v1'))?.digest, digest);
  assert.is(server.requests.length, before);
  const denied = await failure(registry.pushBlob(repo, randomBytes(10)), 'E_REGISTRY_DENIED');
  assert.ok(denied.message.includes(`"${tokenRegistry.host}"`) && denied.message.includes('push access'), denied.message);
});

token('an expired token is not reused', async () => {
  const shortLived = await startRegistry('token', { tokenTtlSeconds: 2 });
  try {
    const { full } = shortLived.users!;
    keepSecret(full.password, shortLived.users!.pullOnly.password);
    const registry = client({ registry: shortLived.host, credentials: basicConfig(shortLived.host, full.username, full.password) });
    const repo = unique('expiry');
    await registry.manifestExists(repo, 'v1');
    await registry.manifestExists(repo, 'v1');
    assert.is(shortLived.tokenServer!.requests.length, 1, 'reused while valid');
    await new Promise((resolve) => setTimeout(resolve, 1600));
    await registry.manifestExists(repo, 'v1');
    assert.is(shortLived.tokenServer!.requests.length, 2, 'fetched again after expiry');
  } finally {
    await shortLived.stop();
  }
});

token('a token realm answering 400 with the refresh token in error_description: E_REGISTRY_UNAUTHORIZED, the token scrubbed everywhere', async () => {
  const refresh = `refresh-${randomBytes(12).toString('hex')}`;
  keepSecret(refresh);
  let realm = '';
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.url === '/token') {
        const form = new URLSearchParams(Buffer.concat(chunks).toString());
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'invalid_grant', error_description: `refresh token ${form.get('refresh_token')} is expired or revoked` }));
        return;
      }
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': `Bearer realm="${realm}",service="echo"` });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const host = `127.0.0.1:${(server.address() as { port: number }).port}`;
    realm = `http://${host}/token`;
    const before = events.length;
    const registry = client({ registry: host, credentials: parseDockerConfig({ auths: { [host]: { identitytoken: refresh } } }) });
    const error = await failure(registry.manifestExists(unique('refresh'), 'v1'), 'E_REGISTRY_UNAUTHORIZED');
    assert.ok(error.message.includes(`"${host}"`) && error.message.includes('invalid_grant'), error.message);
    assertScrubbed(error, [refresh], host, before);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

token.run();

// ================================================================ secrets
const leak = suite('no secret anywhere');

leak('no password, auth string or token appears in any error message or log line of these tests', () => {
  assert.ok(captured.length > 50, `captured ${captured.length} lines`);
  assert.ok(secrets.size >= 10, `tracked ${secrets.size} secrets`);
  for (const line of captured) {
    for (const secret of secrets) assert.not.ok(line.includes(secret), `a secret leaked into: ${line.slice(0, 200)}`);
    assert.not.match(line, /eyJ[\w-]+\.[\w-]+\.[\w-]+/, `a JWT leaked into: ${line.slice(0, 200)}`);
    assert.not.match(line, /(Basic|Bearer) [A-Za-z0-9+/=._-]{8,}/, `an Authorization value leaked into: ${line.slice(0, 200)}`);
  }
});

leak.run();
