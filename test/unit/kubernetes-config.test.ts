// readBuilderConfig with the real client-node against the test API server.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readBuilderConfig } from '../../lib/kubernetes/config.ts';
import { buildInputData } from '../../lib/kubernetes/manifest.ts';
import { DEFAULT_RUNTIME_IMAGES } from '../../lib/runtime/default-catalog.ts';
import { parseRuntimeCatalog } from '../../lib/runtime/catalog.ts';
import { withTlsVerifyOff } from '../../lib/kubernetes/registry-settings.ts';
import { transportFor } from '../../lib/registry/transport.ts';

const RUNTIME_IMAGES = JSON.stringify(DEFAULT_RUNTIME_IMAGES);
import { rejectsWith } from '../support/errors.ts';
import { startKubeApi, type KubeApi } from '../support/kube-api.ts';

const b64 = (text: string) => Buffer.from(text).toString('base64');
const dockerconfigjson = (server: string, username = 'builder', password = 's3cret-pa55') =>
  JSON.stringify({ auths: { [server]: { username, password, auth: b64(`${username}:${password}`) } } });

let api: KubeApi;

test.before(async () => {
  api = await startKubeApi();
  api.create('configmaps', {
    metadata: { name: 'kubeless-config', namespace: 'kubeless' },
    data: {
      'enable-build-step': 'true',
      'function-registry-tls-verify': 'false',
      'runtime-images': RUNTIME_IMAGES,
      'builder-image': 'registry.example.com/fib:1',
      'builder-image-secret': 'fib-pull',
    },
  });
  api.create('secrets', {
    metadata: { name: 'kubeless-registry-credentials', namespace: 'team-a' },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': b64(dockerconfigjson('http://192.168.99.100:5000/v2')) },
  });
  api.create('secrets', {
    metadata: { name: 'legacy', namespace: 'team-b' },
    type: 'kubernetes.io/dockercfg',
    data: { '.dockercfg': b64(JSON.stringify({ 'https://index.docker.io/v1/': { auth: b64('Someone:pw'), email: 'a@b.c' } })) },
  });
  api.create('secrets', {
    metadata: { name: 'two', namespace: 'team-c' },
    type: 'kubernetes.io/dockerconfigjson',
    data: { '.dockerconfigjson': b64(JSON.stringify({ auths: { 'a.example.com': { auth: b64('u:p') }, 'b.example.com': { auth: b64('u:p') } } })) },
  });
});

test.after(async () => {
  await api?.close();
});

test('reads kubeless-config and the registry Secret of the function namespace', async () => {
  const config = await readBuilderConfig(api.kubeConfig, { namespace: 'team-a' });
  assert.is(config.enabled, true);
  assert.is(config.tlsVerify, false);
  assert.is(config.jobConfigText.runtimeImages, RUNTIME_IMAGES);
  assert.equal(config.catalog, parseRuntimeCatalog(RUNTIME_IMAGES));
  // function-registry-tls-verify is applied to the target (the Secret's only registry) once, here.
  assert.equal(config.registries, { '192.168.99.100:5000': { tlsVerify: false } });
  assert.is(config.builderImage, 'registry.example.com/fib:1');
  assert.is(config.builderImageSecret, 'fib-pull');
  assert.equal({ name: config.registrySecret.name, namespace: config.registrySecret.namespace }, { name: 'kubeless-registry-credentials', namespace: 'team-a' });
  // Not configured: the build derives it from the Secret's only entry, as Kubeless did (lib/target.ts).
  assert.is(config.registry, undefined);
  assert.is(config.registrySecret.dockerConfig!.entries[0]!.key, 'http://192.168.99.100:5000/v2');
  assert.ok(api.requests.some((r) => r.path === '/api/v1/namespaces/kubeless/configmaps/kubeless-config'));
  assert.ok(api.requests.some((r) => r.path === '/api/v1/namespaces/team-a/secrets/kubeless-registry-credentials'));
});

test('a legacy dockercfg Secret with a configurable name and namespace', async () => {
  const config = await readBuilderConfig(api.kubeConfig, { namespace: 'team-a', secretName: 'legacy', secretNamespace: 'team-b' });
  assert.is(config.registrySecret.namespace, 'team-b');
  assert.is(config.registrySecret.dockerConfig!.format, 'dockercfg');
  assert.is(config.registrySecret.dockerConfig!.entries[0]!.host, 'docker.io');
});

test('the registry comes from the options, else from function-registry in kubeless-config', async () => {
  const config = await readBuilderConfig(api.kubeConfig, { namespace: 'team-c', secretName: 'two', registry: 'b.example.com/functions' });
  assert.is(config.registry, 'b.example.com/functions');
  api.create('configmaps', { metadata: { name: 'with-registry', namespace: 'kubeless' }, data: { 'function-registry': ' a.example.com/fns ', 'builder-image': 'x' } });
  const fromConfig = await readBuilderConfig(api.kubeConfig, { namespace: 'team-c', secretName: 'two', configMapName: 'with-registry' });
  assert.is(fromConfig.registry, 'a.example.com/fns');
  assert.is(fromConfig.enabled, false);
  assert.is(fromConfig.tlsVerify, true);
  assert.equal(fromConfig.registries, {});
});

test('function-url-allow-private-addresses: none by default, true or a list of ranges, anything else E_CONFIG_INVALID; the build input carries it', async () => {
  assert.is((await readBuilderConfig(api.kubeConfig, { namespace: 'team-a' })).allowPrivateAddresses, false);
  const read = async (value: string) => {
    const name = `private-${Buffer.from(value).toString('hex').slice(0, 40)}`;
    api.create('configmaps', { metadata: { name, namespace: 'kubeless' }, data: { 'builder-image': 'x', 'function-url-allow-private-addresses': value } });
    return readBuilderConfig(api.kubeConfig, { namespace: 'team-a', configMapName: name });
  };
  assert.is((await read('TRUE')).allowPrivateAddresses, true);
  const ranges = await read(' 10.20.0.0/16, fd00::/8 ');
  assert.equal(ranges.allowPrivateAddresses, ['10.20.0.0/16', 'fd00::/8']);
  assert.is(buildInputData({ name: 'f', namespace: 'team-a', source: {}, tag: 't' }, ranges)['function-url-allow-private-addresses'], '10.20.0.0/16,fd00::/8');
  const bad = await rejectsWith(read('everything'), 'E_CONFIG_INVALID');
  assert.match(bad.message, '"function-url-allow-private-addresses" must be "true", "false" or a comma-separated list');
});

test('a missing Secret is a user error that names it and says how to create it, without any secret', async () => {
  const error = await rejectsWith(readBuilderConfig(api.kubeConfig, { namespace: 'nowhere' }), 'E_KUBERNETES_NOT_FOUND');
  assert.is(error.kind, 'user');
  assert.match(error.message, 'nowhere/kubeless-registry-credentials');
  assert.match(error.message, 'kubectl create secret docker-registry');
});

test('a missing kubeless-config, a bad boolean and an unreachable API server are told apart', async () => {
  const missing = await rejectsWith(readBuilderConfig(api.kubeConfig, { namespace: 'team-a', configMapNamespace: 'other' }), 'E_KUBERNETES_NOT_FOUND');
  assert.match(missing.message, 'other/kubeless-config');
  api.create('configmaps', { metadata: { name: 'bad', namespace: 'kubeless' }, data: { 'enable-build-step': 'yes', 'builder-image': 'x' } });
  const bad = await rejectsWith(readBuilderConfig(api.kubeConfig, { namespace: 'team-a', configMapName: 'bad' }), 'E_CONFIG_INVALID');
  assert.match(bad.message, '"enable-build-step" must be "true" or "false"');
  api.create('configmaps', { metadata: { name: 'bad-catalog', namespace: 'kubeless' }, data: { 'runtime-images': '[{"ID":"nodejs","versions":[]}]', 'builder-image': 'x' } });
  const catalog = await rejectsWith(readBuilderConfig(api.kubeConfig, { namespace: 'team-a', configMapName: 'bad-catalog' }), 'E_CATALOG_INVALID');
  assert.match(catalog.message, 'kubeless/bad-catalog key "runtime-images"');
  const down = await startKubeApi();
  const kubeConfig = down.kubeConfig;
  await down.close();
  const unreachable = await rejectsWith(readBuilderConfig(kubeConfig, { namespace: 'team-a' }), 'E_KUBERNETES_UNREACHABLE');
  assert.is(unreachable.kind, 'infrastructure');
});

test('builder-engine: docker when unset, registry when set, anything else an error naming the key', async () => {
  assert.is((await readBuilderConfig(api.kubeConfig, { namespace: 'team-a' })).engine, 'docker');
  api.create('configmaps', { metadata: { name: 'engine-registry', namespace: 'kubeless' }, data: { 'builder-engine': ' registry ', 'builder-image': 'x' } });
  assert.is((await readBuilderConfig(api.kubeConfig, { namespace: 'team-a', configMapName: 'engine-registry' })).engine, 'registry');
  api.create('configmaps', { metadata: { name: 'engine-bad', namespace: 'kubeless' }, data: { 'builder-engine': 'kaniko', 'builder-image': 'x' } });
  const bad = await rejectsWith(readBuilderConfig(api.kubeConfig, { namespace: 'team-a', configMapName: 'engine-bad' }), 'E_ENGINE_OPTION');
  assert.is(bad.kind, 'user');
  assert.match(bad.message, 'kubeless/engine-bad key "builder-engine"');
  assert.match(bad.message, 'docker, registry');
});

test('builder-fast-path: on unless "false"; another value is refused, naming the key', async () => {
  assert.is((await readBuilderConfig(api.kubeConfig, { namespace: 'team-a' })).fastPath, true);
  api.create('configmaps', { metadata: { name: 'no-fast-path', namespace: 'kubeless' }, data: { 'builder-image': 'x', 'builder-engine': 'registry', 'builder-fast-path': 'false' } });
  const off = await readBuilderConfig(api.kubeConfig, { namespace: 'team-a', configMapName: 'no-fast-path' });
  assert.is(off.fastPath, false);
  assert.is(off.engine, 'registry');
  api.create('configmaps', { metadata: { name: 'bad-fast-path', namespace: 'kubeless' }, data: { 'builder-image': 'x', 'builder-fast-path': 'off' } });
  const bad = await rejectsWith(readBuilderConfig(api.kubeConfig, { namespace: 'team-a', configMapName: 'bad-fast-path' }), 'E_CONFIG_INVALID');
  assert.match(bad.message, '"builder-fast-path" must be "true" or "false"');
});

test('errors never carry the registry password', async () => {
  api.create('secrets', { metadata: { name: 'broken', namespace: 'team-a' }, type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64('{"auths": {"x.io": {"auth": "s3cret-pa55"}}}') } });
  const error = await rejectsWith(readBuilderConfig(api.kubeConfig, { namespace: 'team-a', secretName: 'broken' }), 'E_REGISTRY_SECRET_INVALID');
  assert.not.match(JSON.stringify({ m: error.message, d: error.details }), 's3cret');
});

test('function-registry-tls-verify "false" extends the registry-settings entry that names the host in another spelling', () => {
  const host = 'registry.example.com:5000';
  const ca = '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n';
  for (const alias of [`https://${host}/v2`, `https://${host}`, `${host}/v2/`]) {
    const settings = withTlsVerifyOff({ [alias]: { ca }, 'other.example.com': { insecure: true } }, host);
    assert.equal(settings, { [alias]: { tlsVerify: false, ca }, 'other.example.com': { insecure: true } }, alias);
    assert.is(transportFor(settings, host).tlsVerify, false, alias);
  }
  // An explicit per-registry setting is more specific than the cluster-wide flag.
  assert.equal(withTlsVerifyOff({ [`https://${host}/v2`]: { tlsVerify: true } }, host), { [`https://${host}/v2`]: { tlsVerify: true } });
  assert.equal(withTlsVerifyOff({}, host), { [host]: { tlsVerify: false } });
});

test.run();
