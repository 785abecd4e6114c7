// The registry client's pure parts: challenges, scopes, Link headers, Retry-After, platform
// selection, and where a registry's API is reached (https or plain http).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseWwwAuthenticate } from '../../lib/registry/auth.ts';
import { nextLink } from '../../lib/registry/client.ts';
import { parseDockerConfig, resolveCredentials } from '../../lib/registry/credentials.ts';
import { MEDIA_TYPE, selectPlatform, type ManifestIndex } from '../../lib/registry/manifest.ts';
import { isLoopbackHost, registryEndpoint, transportFor } from '../../lib/registry/transport.ts';
import { covers, mergeScopes } from '../../lib/registry/auth.ts';
import { retryAfterMs } from '../../lib/registry/transport.ts';

const challenges: Array<[string, Array<{ scheme: string; params: Record<string, string> }>]> = [
  ['Basic realm="Registry Realm"', [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]],
  [
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/node:pull"',
    [{ scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/node:pull' } }],
  ],
  [
    'Bearer realm="https://r.io/token", service="r.io", scope="repository:a:pull,push repository:b:pull", error="insufficient_scope"',
    [{ scheme: 'bearer', params: { realm: 'https://r.io/token', service: 'r.io', scope: 'repository:a:pull,push repository:b:pull', error: 'insufficient_scope' } }],
  ],
  ['bearer Realm=https://r.io/token,Service=r.io', [{ scheme: 'bearer', params: { realm: 'https://r.io/token', service: 'r.io' } }]],
  [
    'Basic realm="a, \\"quoted\\" realm", Bearer realm="https://t/token",service="s"',
    [
      { scheme: 'basic', params: { realm: 'a, "quoted" realm' } },
      { scheme: 'bearer', params: { realm: 'https://t/token', service: 's' } },
    ],
  ],
  ['Negotiate abc123==, Basic realm="x"', [{ scheme: 'negotiate', params: { token68: 'abc123==' } }, { scheme: 'basic', params: { realm: 'x' } }]],
  ['', []],
];

for (const [header, expected] of challenges) {
  test(`WWW-Authenticate: ${header || '(empty)'}`, () => {
    assert.equal(parseWwwAuthenticate(header), expected);
  });
}

test('several WWW-Authenticate headers are all read', () => {
  assert.equal(
    parseWwwAuthenticate(['Basic realm="x"', 'Bearer realm="y"']).map((c) => c.scheme),
    ['basic', 'bearer'],
  );
});

test('scopes merge per resource, actions united and sorted', () => {
  assert.equal(mergeScopes(['repository:a:push', 'repository:a:pull'], ['repository:b:pull repository:a:pull']), [
    'repository:a:pull,push',
    'repository:b:pull',
  ]);
  assert.equal(mergeScopes(['repository:127.0.0.1:5000/x:pull']), ['repository:127.0.0.1:5000/x:pull']);
});

test('a cached token is used only when its scopes cover every resource and action asked for', () => {
  const held = ['repository:a:pull,push', 'repository:b:pull'];
  const table: Array<[string[], boolean]> = [
    [['repository:a:pull'], true],
    [['repository:a:push,pull'], true],
    [['repository:a:pull', 'repository:b:pull'], true],
    [['repository:b:pull repository:a:push'], true],
    [['repository:b:push'], false],
    [['repository:b:pull,push'], false],
    [['repository:c:pull'], false],
    [['repository:a:pull', 'repository:c:pull'], false],
    [['repository:a:delete'], false],
    // Another repository whose name starts like a held one is still another resource.
    [['repository:ab:pull'], false],
    [['repository:127.0.0.1:5000/a:pull'], false],
    [[], true],
  ];
  for (const [wanted, expected] of table) assert.is(covers(held, wanted), expected, JSON.stringify(wanted));
  assert.is(covers(['repository:127.0.0.1:5000/a:pull'], ['repository:127.0.0.1:5000/a:pull']), true);
  assert.is(covers(['repository:a:pull', 'repository:a:push'], ['repository:a:pull,push']), true, 'actions of one resource held in two entries');
  assert.is(covers([], ['repository:a:pull']), false);
});

test('Link rel="next" is found, relative or absolute, among other links', () => {
  assert.is(nextLink('</v2/a/tags/list?last=b&n=2>; rel="next"'), '/v2/a/tags/list?last=b&n=2');
  assert.is(nextLink('<https://r.io/v2/a/tags/list?n=2&last=x>; rel=next'), 'https://r.io/v2/a/tags/list?n=2&last=x');
  assert.is(nextLink('</prev>; rel="prev", </next?a=1,2>; rel="next"'), '/next?a=1,2');
  assert.is(nextLink(undefined), undefined);
  assert.is(nextLink('</x>; rel="prev"'), undefined);
});

test('Retry-After in seconds or as a date', () => {
  assert.is(retryAfterMs('3'), 3000);
  assert.is(retryAfterMs(undefined), undefined);
  assert.is(retryAfterMs('soon'), undefined);
  const inFive = retryAfterMs(new Date(Date.now() + 5000).toUTCString()) ?? 0;
  assert.ok(inFive > 3000 && inFive <= 5000, String(inFive));
});

const index: ManifestIndex = {
  schemaVersion: 2,
  mediaType: MEDIA_TYPE.ociIndex,
  manifests: [
    { mediaType: MEDIA_TYPE.ociManifest, digest: 'sha256:' + '1'.repeat(64), size: 1, platform: { os: 'linux', architecture: 'amd64' } },
    { mediaType: MEDIA_TYPE.ociManifest, digest: 'sha256:' + '2'.repeat(64), size: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
    { mediaType: MEDIA_TYPE.ociManifest, digest: 'sha256:' + '3'.repeat(64), size: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
    { mediaType: MEDIA_TYPE.ociManifest, digest: 'sha256:' + '4'.repeat(64), size: 1, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    {
      mediaType: MEDIA_TYPE.ociManifest,
      digest: 'sha256:' + '5'.repeat(64),
      size: 1,
      platform: { os: 'unknown', architecture: 'unknown' },
      annotations: { 'vnd.docker.reference.type': 'attestation-manifest' },
    },
    { mediaType: MEDIA_TYPE.ociManifest, digest: 'sha256:' + '6'.repeat(64), size: 1, platform: { os: 'windows', architecture: 'amd64' } },
  ],
};

test('platform selection from an index', () => {
  assert.is(selectPlatform(index, 'linux/amd64')?.digest, 'sha256:' + '1'.repeat(64));
  assert.is(selectPlatform(index, 'linux/arm64')?.digest, 'sha256:' + '4'.repeat(64), 'arm64 means v8');
  assert.is(selectPlatform(index, 'linux/arm')?.digest, 'sha256:' + '3'.repeat(64), 'arm means v7');
  assert.is(selectPlatform(index, 'linux/arm/v6')?.digest, 'sha256:' + '2'.repeat(64));
  assert.is(selectPlatform(index, { os: 'windows', architecture: 'amd64' })?.digest, 'sha256:' + '6'.repeat(64));
  assert.is(selectPlatform(index, 'linux/s390x'), undefined);
  assert.is(selectPlatform(index, 'unknown/unknown'), undefined, 'attestations are never picked');
});

test('loopback hosts', () => {
  for (const host of ['localhost', 'localhost:5000', '127.0.0.1', '127.0.0.1:5000', '127.1.2.3:80', '[::1]:5000', '::1']) assert.ok(isLoopbackHost(host), host);
  for (const host of ['10.0.0.1:5000', 'registry.example.com', '192.168.99.100:5000', '[::2]:5000', 'localhost.example.com']) assert.not.ok(isLoopbackHost(host), host);
});

// registry, transport, credential key → origin
const endpoints: Array<[string, object, string | undefined, string]> = [
  ['docker.io', {}, undefined, 'https://registry-1.docker.io'],
  ['index.docker.io', { insecure: true }, undefined, 'https://registry-1.docker.io'],
  ['ghcr.io', {}, undefined, 'https://ghcr.io'],
  ['127.0.0.1:5000', {}, undefined, 'http://127.0.0.1:5000'],
  ['localhost:5000', {}, undefined, 'http://localhost:5000'],
  ['127.0.0.1:5000', { ca: 'PEM' }, undefined, 'https://127.0.0.1:5000'],
  ['127.0.0.1:5000', { tlsVerify: false }, undefined, 'https://127.0.0.1:5000'],
  ['127.0.0.1:5000', { insecure: false }, undefined, 'https://127.0.0.1:5000'],
  ['192.168.99.100:5000', {}, undefined, 'https://192.168.99.100:5000'],
  ['192.168.99.100:5000', { insecure: true }, undefined, 'http://192.168.99.100:5000'],
  ['192.168.99.100:5000', {}, 'http://192.168.99.100:5000/v2', 'http://192.168.99.100:5000'],
  ['192.168.99.100:5000', { insecure: false }, 'http://192.168.99.100:5000/v2', 'https://192.168.99.100:5000'],
  ['localhost:5000', {}, 'https://localhost:5000', 'https://localhost:5000'],
  ['Registry.Example.com', {}, 'registry.example.com', 'https://registry.example.com'],
];

for (const [host, transport, key, origin] of endpoints) {
  test(`endpoint of ${host} ${JSON.stringify(transport)}${key ? ` with key ${key}` : ''} is ${origin}`, () => {
    const credential = key === undefined ? undefined : resolveCredentials(parseDockerConfig({ auths: { [key]: { username: 'u', password: 'p' } } }), host);
    if (key !== undefined) assert.ok(credential);
    const endpoint = registryEndpoint(host, transport, credential);
    assert.is(endpoint.origin, origin);
    assert.is(endpoint.plainHttp, origin.startsWith('http:'));
    assert.type(endpoint.reason, 'string');
  });
}

test('transport settings are found by normalised host', () => {
  const settings = { 'Registry.Example.com:5000': { insecure: true }, 'index.docker.io': { tlsVerify: false }, 'https://ghcr.io/v2/': { ca: 'x' } };
  assert.equal(transportFor(settings, 'registry.example.com:5000'), { insecure: true });
  assert.equal(transportFor(settings, 'docker.io'), { tlsVerify: false });
  assert.equal(transportFor(settings, 'ghcr.io'), { ca: 'x' });
  assert.equal(transportFor(settings, 'quay.io'), {});
  assert.equal(transportFor(undefined, 'quay.io'), {});
});

test.run();
