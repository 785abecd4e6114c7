import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { docker } from '../support/docker.ts';
import { dockerClientConfig, probe, startRegistry, type RegistryHandle } from '../support/registry.ts';
import { buildTinyImage, type TinyImage } from '../support/tiny-image.ts';

let registry: RegistryHandle;
let image: TinyImage | undefined;

test.before(async () => {
  registry = await startRegistry('tls');
});

test.after(async () => {
  await image?.remove();
  await registry?.stop();
});

test('tls registry: a client without the CA fails the handshake, one with it gets 200', async () => {
  assert.ok(registry.url.startsWith('https://'));
  const failure = await probe(`${registry.url}/v2/`).then(
    () => undefined,
    (error: NodeJS.ErrnoException) => error,
  );
  assert.ok(failure, 'request without the CA must fail');
  assert.match(String(failure.code), /CERT|SIGNATURE|ISSUER/);
  assert.is(await probe(`${registry.url}/v2/`, { ca: registry.caPem }), 200);
  assert.is(readFileSync(registry.caPath!, 'utf8'), registry.caPem);
  // The certificate names both loopback spellings.
  assert.is(await probe(`https://localhost:${registry.port}/v2/`, { ca: registry.caPem }), 200);
});

test('tls registry: plain HTTP is not served', async () => {
  const status = await probe(`http://${registry.host}/v2/`).catch(() => 400);
  assert.is(status, 400);
});

// The Engine treats 127.0.0.0/8 as an insecure registry range, so over loopback this push would also
// work without the certs.d entry: it proves the entry is written and push/pull with credentials
// work, while the test above is the one that proves a client without the CA is refused.
test('tls registry: the Docker Engine gets the CA in certs.d and push/pull work', async () => {
  assert.ok(registry.dockerCertsDir, 'certs.d entry written');
  assert.is(readFileSync(`${registry.dockerCertsDir}/ca.crt`, 'utf8'), registry.caPem);
  image = await buildTinyImage(`${registry.host}/fib-rig/tiny`);
  const config = dockerClientConfig(registry);
  try {
    const pushed = await docker(['--config', config.dir, 'push', image.image]);
    assert.match(pushed, /digest: sha256:[0-9a-f]{64}/);
    await image.remove();
    await docker(['--config', config.dir, 'pull', image.image]);
  } finally {
    config.cleanup();
  }
  const stored = await probe(`${registry.url}/v2/fib-rig/tiny/manifests/${image.tag}`, {
    ca: registry.caPem,
    headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
  });
  assert.is(stored, 200);
});

test('tls registry: stop removes the certs.d entry and the CA', async () => {
  const other = await startRegistry('tls');
  const certsDir = other.dockerCertsDir!;
  assert.ok(existsSync(certsDir));
  await other.stop();
  assert.not.ok(existsSync(certsDir));
  assert.not.ok(existsSync(other.dir));
});

test.run();
