import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { docker, exec } from '../support/docker.ts';
import { dockerClientConfig, probe, startRegistry, type RegistryHandle } from '../support/registry.ts';
import { buildTinyImage, type TinyImage } from '../support/tiny-image.ts';

let registry: RegistryHandle;
let image: TinyImage | undefined;

test.before(async () => {
  registry = await startRegistry('basic');
});

test.after(async () => {
  await image?.remove();
  await registry?.stop();
});

test('basic registry: 401 without credentials or with a wrong password, 200 with the generated ones', async () => {
  assert.ok(registry.username && registry.password, 'handle carries the generated user');
  assert.is(await probe(`${registry.url}/v2/`), 401);
  assert.is(await probe(`${registry.url}/v2/fib-rig/tiny/tags/list`), 401);
  const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
  assert.is(await probe(`${registry.url}/v2/`, { headers: basic(registry.username!, 'wrong') }), 401);
  assert.is(await probe(`${registry.url}/v2/`, { headers: basic(registry.username!, registry.password!) }), 200);
  const config = JSON.parse(registry.dockerConfigJson!);
  const entry = config.auths[registry.host];
  assert.is(Buffer.from(entry.auth, 'base64').toString(), `${registry.username}:${registry.password}`);
});

test('basic registry: docker push is refused without credentials and accepted with them, then pulls back', async () => {
  image = await buildTinyImage(`${registry.host}/fib-rig/tiny`);
  const anonymous = dockerClientConfig(registry, null);
  const authorised = dockerClientConfig(registry);
  try {
    const refused = await exec('docker', ['--config', anonymous.dir, 'push', image.image], { timeoutMs: 60_000 });
    assert.is.not(refused.code, 0, 'push without credentials must fail');
    assert.match(refused.stderr + refused.stdout, /auth|denied|unauthori[sz]ed/i);

    const pushed = await docker(['--config', authorised.dir, 'push', image.image]);
    assert.match(pushed, /digest: sha256:[0-9a-f]{64}/);
    await image.remove();
    await docker(['--config', authorised.dir, 'pull', image.image]);
    const label = await docker(['run', '--rm', '--label', 'io.function-image-builder.test=rig-basic', image.image]);
    assert.match(label, new RegExp(image.image.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  } finally {
    anonymous.cleanup();
    authorised.cleanup();
  }
  assert.not.ok(existsSync(authorised.dir));
});

test('basic registry: stop kills the process and removes its storage', async () => {
  const other = await startRegistry('basic');
  await other.stop();
  assert.not.ok(existsSync(other.dir));
  assert.throws(() => process.kill(other.pid, 0));
});

test.run();
