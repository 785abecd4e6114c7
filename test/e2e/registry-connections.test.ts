// A controller checks every Function on every resync: those checks reuse the registry connections
// across calls instead of opening one (a TLS handshake, on HTTPS) per check. Counted at a fault proxy
// in front of the real registry, over plain HTTP and over TLS.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildFunctionImage } from '../../lib/build.ts';
import { functionImageTag } from '../../lib/image/identity.ts';
import { RegistryClient } from '../../lib/registry/client.ts';
import { parseDockerConfig } from '../../lib/registry/credentials.ts';
import { closeRegistryConnections } from '../../lib/registry/transport.ts';
import { parseRuntimeCatalog } from '../../lib/runtime/catalog.ts';
import { makeCa, makeLeaf } from '../support/certs.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import { functionObject } from '../support/pipeline.ts';
import { PINNED_CATALOG_JSON, pushSmallImage } from '../support/registry-images.ts';
import { dockerConfigJsonFor, startRegistry, type RegistryHandle } from '../support/registry.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFunction } from '../../lib/function/parse.ts';

// Pinned by digest: the checks below make no request but the existence check.
const CATALOG = parseRuntimeCatalog(PINNED_CATALOG_JSON);
const CHECKS = 40;

let registry: RegistryHandle;
let dir: string;
const functions = Array.from({ length: CHECKS }, (_, i) => functionObject(`reuse-${i}`, { handler: 'handler.hello', runtime: 'nodejs24', function: `module.exports = { hello: () => ${i} }` }));

test.before(async () => {
  registry = await startRegistry('anonymous');
  dir = mkdtempSync(join(tmpdir(), 'fib-connections-'));
  const client = new RegistryClient({ registry: registry.host });
  for (const [i, fn] of functions.entries()) await pushSmallImage(client, `fns/reuse-${i}`, [await functionImageTag(fn, { catalog: CATALOG })]);
});

test.after(async () => {
  await closeRegistryConnections();
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function checkAll(host: string, registries = {}): Promise<void> {
  for (const fn of functions) {
    const result = await buildFunctionImage(parseFunction(fn), { registry: `${host}/fns`, catalog: CATALOG, registries });
    assert.ok(result.cached, `${result.function} was found`);
  }
}

test(`${CHECKS} cached checks of distinct Functions, one call each, share two connections`, async () => {
  const proxy = await startFaultProxy(registry.url);
  try {
    await checkAll(proxy.host);
    assert.is(proxy.requests.filter((r) => r.method === 'HEAD').length, CHECKS, 'one HEAD per check');
    // Two, not one: undici frees a socket only after the body's end is processed, so a request sent
    // at once after the previous answer may take a second connection (as registry-client.test.ts says).
    assert.ok(proxy.connections <= 2, `${proxy.connections} connections for ${CHECKS} checks`);
  } finally {
    await closeRegistryConnections();
    await proxy.stop();
  }
});

test(`over TLS: ${CHECKS} checks make at most two handshakes`, async () => {
  const ca = await makeCa(dir, 'ca', 'function-image-builder connections test CA');
  const leaf = await makeLeaf(dir, 'server', ca, { commonName: 'localhost', usage: 'server' });
  const proxy = await startFaultProxy(registry.url, { tls: { cert: leaf.certPem, key: leaf.keyPem } });
  try {
    await checkAll(proxy.host, { [proxy.host]: { ca: ca.certPem } });
    assert.ok(proxy.connections <= 2, `${proxy.connections} TLS connections for ${CHECKS} checks`);
  } finally {
    await closeRegistryConnections();
    await proxy.stop();
  }
});

test('closeRegistryConnections closes the pooled connections; the next check opens a new one and still answers', async () => {
  const proxy = await startFaultProxy(registry.url);
  try {
    await checkAll(proxy.host);
    const opened = proxy.connections;
    await closeRegistryConnections();
    const again = await buildFunctionImage(parseFunction(functions[0]!), { registry: `${proxy.host}/fns`, catalog: CATALOG });
    assert.ok(again.cached);
    assert.is(proxy.connections, opened + 1);
  } finally {
    await closeRegistryConnections();
    await proxy.stop();
  }
});

test('against a token registry, a second round of checks asks for no token and sends nothing without credentials: what the first calls learned serves the next', async () => {
  const tokenRegistry = await startRegistry('token');
  const proxy = await startFaultProxy(tokenRegistry.url);
  try {
    const full = tokenRegistry.users!.full;
    const dockerConfig = dockerConfigJsonFor(proxy.host, full);
    const some = functions.slice(0, 10);
    const pusher = new RegistryClient({ registry: tokenRegistry.host, credentials: parseDockerConfig(dockerConfigJsonFor(tokenRegistry.host, full)) });
    for (const [i, fn] of some.entries()) await pushSmallImage(pusher, `fns/reuse-${i}`, [await functionImageTag(fn, { catalog: CATALOG })]);
    const round = async () => {
      const [tokens, requests] = [tokenRegistry.tokenServer!.requests.length, proxy.requests.length];
      for (const fn of some) assert.ok((await buildFunctionImage(parseFunction(fn), { registry: `${proxy.host}/fns`, catalog: CATALOG, dockerConfig })).cached);
      return { tokens: tokenRegistry.tokenServer!.requests.length - tokens, requests: proxy.requests.slice(requests) };
    };
    const first = await round();
    assert.is(first.tokens, some.length, 'one token per repository (scopes name it)');
    const second = await round();
    assert.is(second.tokens, 0, 'the tokens of the first round are reused');
    assert.equal(second.requests.map((r) => [r.method, r.authorized, r.status]), some.map(() => ['HEAD', true, 200]), 'one authorised HEAD per check');
  } finally {
    await closeRegistryConnections();
    await proxy.stop();
    await tokenRegistry.stop();
  }
});

test('a check leaves no timer behind: the 30-minute deadline of each call is cleared when it returns', async () => {
  // Left scheduled, a controller checking thousands of Functions a minute keeps that many timers
  // (and what they hold) alive for half an hour.
  const created = new Set<unknown>();
  const cleared = new Set<unknown>();
  const { setTimeout: realSet, clearTimeout: realClear } = globalThis;
  globalThis.setTimeout = ((handler: unknown, delay?: number, ...args: unknown[]) => {
    const timer = (realSet as (handler: unknown, delay?: number, ...args: unknown[]) => NodeJS.Timeout)(handler, delay, ...args);
    if (delay === 30 * 60_000) created.add(timer);
    return timer;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((timer: Parameters<typeof clearTimeout>[0]) => {
    cleared.add(timer);
    realClear(timer);
  }) as typeof clearTimeout;
  try {
    for (const fn of functions.slice(0, 5)) assert.ok((await buildFunctionImage(parseFunction(fn), { registry: `${registry.host}/fns`, catalog: CATALOG })).cached);
  } finally {
    globalThis.setTimeout = realSet;
    globalThis.clearTimeout = realClear;
  }
  assert.is(created.size, 5, 'one deadline per call');
  assert.equal([...created].filter((timer) => !cleared.has(timer)), [], 'every deadline was cleared');
});

test.run();
