import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { inspect } from 'node:util';
import { parseDockerConfig, resolveCredentials, registryHostFromKey, CredentialsError } from '../../lib/registry/credentials.ts';

const b64 = (text: string) => Buffer.from(text).toString('base64');
const auth = (user: string, pass: string) => ({ auth: b64(`${user}:${pass}`) });

// Every key form users write → the registry host it must match (and hosts it must not).
const keyForms: Array<[string, string[], string[]]> = [
  ['https://index.docker.io/v1/', ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'DOCKER.IO'], ['ghcr.io']],
  ['docker.io', ['docker.io', 'index.docker.io', 'registry-1.docker.io'], []],
  ['index.docker.io', ['docker.io', 'registry-1.docker.io'], []],
  ['registry-1.docker.io', ['docker.io', 'index.docker.io'], []],
  ['https://registry-1.docker.io/v2/', ['docker.io'], []],
  ['http://192.168.99.100:5000/v2', ['192.168.99.100:5000', 'http://192.168.99.100:5000'], ['192.168.99.100', '192.168.99.100:5001']],
  ['https://my-registry.example.com/v2/', ['my-registry.example.com', 'My-Registry.Example.com'], ['my-registry.example.com:443', 'registry.example.com']],
  ['https://my-registry.example.com/', ['my-registry.example.com'], []],
  ['my-registry.example.com:5000', ['my-registry.example.com:5000'], ['my-registry.example.com']],
  ['harbor.example.com/project', ['harbor.example.com'], []],
  ['https://harbor.example.com/v2/project/sub', ['harbor.example.com'], []],
  ['123456789.dkr.ecr.eu-west-1.amazonaws.com', ['123456789.dkr.ecr.eu-west-1.amazonaws.com'], ['dkr.ecr.eu-west-1.amazonaws.com']],
  ['localhost:5000', ['localhost:5000'], ['localhost', '127.0.0.1:5000']],
  ['[::1]:5000', ['[::1]:5000'], []],
];

for (const [key, matches, others] of keyForms) {
  test(`key ${JSON.stringify(key)} matches ${matches.join(', ')}`, () => {
    const config = parseDockerConfig({ auths: { [key]: auth('user', 'pass') } });
    for (const host of matches) {
      const credential = resolveCredentials(config, host);
      assert.ok(credential, `${key} should match ${host}`);
      assert.is(credential.key, key);
      assert.is(credential.username, 'user');
      assert.is(credential.password, 'pass');
    }
    for (const host of others) assert.is(resolveCredentials(config, host), undefined, `${key} must not match ${host}`);
  });
}

test('the scheme written in a key is kept as a plain-HTTP hint', () => {
  assert.equal(registryHostFromKey('http://192.168.99.100:5000/v2'), { host: '192.168.99.100:5000', scheme: 'http' });
  assert.equal(registryHostFromKey('https://index.docker.io/v1/'), { host: 'docker.io', scheme: 'https' });
  assert.equal(registryHostFromKey('ghcr.io'), { host: 'ghcr.io', scheme: undefined });
  const config = parseDockerConfig({ auths: { 'http://minikube:5000/v2': auth('u', 'p') } });
  assert.is(resolveCredentials(config, 'minikube:5000')?.keyScheme, 'http');
});

// Docker Hub plus two private registries in one file, in each accepted encoding.
const many = {
  auths: {
    'https://index.docker.io/v1/': { ...auth('hubuser', 'hub:pass:with:colons'), email: 'me@example.com' },
    'http://192.168.99.100:5000/v2': { username: 'minikube', password: 'mk-pass' },
    'ghcr.io': { username: 'bot', password: 'x', identitytoken: 'refresh-abc' },
    'registry.example.com:8443': { registrytoken: 'bearer-xyz' },
  },
};
const encodings: Array<[string, unknown]> = [
  ['object', many],
  ['JSON text', JSON.stringify(many)],
  ['Buffer', Buffer.from(JSON.stringify(many))],
  ['base64 Secret data value', b64(JSON.stringify(many))],
  ['wrapped base64', b64(JSON.stringify(many)).replace(/(.{60})/g, '$1\n')],
  ['Secret object', { apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/dockerconfigjson', data: { '.dockerconfigjson': b64(JSON.stringify(many)) } }],
  ['legacy .dockercfg', JSON.stringify(many.auths)],
  ['legacy Secret', { kind: 'Secret', type: 'kubernetes.io/dockercfg', data: { '.dockercfg': b64(JSON.stringify(many.auths)) } }],
];

for (const [name, input] of encodings) {
  test(`Docker Hub + private registries from ${name}`, () => {
    const config = parseDockerConfig(input as string);
    assert.is(config.format, name.includes('legacy') ? 'dockercfg' : 'dockerconfigjson');
    assert.is(config.entries.length, 4);

    const hub = resolveCredentials(config, 'registry-1.docker.io');
    assert.is(hub?.key, 'https://index.docker.io/v1/');
    assert.is(hub?.username, 'hubuser');
    assert.is(hub?.password, 'hub:pass:with:colons', 'auth is split at the first colon only');
    assert.is(hub?.type, 'basic');

    const minikube = resolveCredentials(config, '192.168.99.100:5000');
    assert.is(minikube?.key, 'http://192.168.99.100:5000/v2');
    assert.is(minikube?.username, 'minikube');
    assert.is(minikube?.password, 'mk-pass');

    const ghcr = resolveCredentials(config, 'ghcr.io');
    assert.is(ghcr?.type, 'identitytoken');
    assert.is(ghcr?.identityToken, 'refresh-abc');

    const registry = resolveCredentials(config, 'registry.example.com:8443');
    assert.is(registry?.type, 'registrytoken');
    assert.is(registry?.registryToken, 'bearer-xyz');

    assert.is(resolveCredentials(config, 'quay.io'), undefined);
    assert.is(resolveCredentials(undefined, 'docker.io'), undefined);
  });
}

test('the bare-host key wins over URL forms of the same registry', () => {
  const config = parseDockerConfig({
    auths: {
      'http://r.example.com/v2': auth('a', '1'),
      'https://r.example.com/v2/': auth('b', '2'),
      'r.example.com/path': auth('c', '3'),
      'r.example.com': auth('d', '4'),
    },
  });
  assert.is(resolveCredentials(config, 'r.example.com')?.key, 'r.example.com');
  const withoutBare = parseDockerConfig({ auths: { 'http://r.example.com/v2': auth('a', '1'), 'https://r.example.com/v2/': auth('b', '2') } });
  assert.is(resolveCredentials(withoutBare, 'r.example.com')?.key, 'https://r.example.com/v2/');
});

test('credential helpers are ignored with a warning; empty entries are skipped', () => {
  const config = parseDockerConfig({
    auths: { 'https://index.docker.io/v1/': {}, 'ghcr.io': auth('u', 'p') },
    credsStore: 'desktop',
    credHelpers: { '123.dkr.ecr.us-east-1.amazonaws.com': 'ecr-login' },
  });
  assert.is(config.entries.length, 1);
  assert.is(resolveCredentials(config, 'docker.io'), undefined);
  assert.ok(config.warnings.some((w) => w.includes('credsStore "desktop" ignored')), config.warnings.join('\n'));
  assert.ok(config.warnings.some((w) => w.includes('123.dkr.ecr.us-east-1.amazonaws.com') && w.includes('ignored')));
  assert.ok(config.warnings.some((w) => w.includes('"https://index.docker.io/v1/" has no auth')));
});

const secret = 'S3cr3t-Value-42';
const broken: Array<[string, unknown, string]> = [
  ['not JSON', `{"auths": {"r.io": {"auth": "${secret}"`, 'not valid JSON'],
  ['garbage', `%%${secret}%%`, 'neither JSON nor base64'],
  ['auth without colon', { auths: { 'r.io': { auth: b64(secret) } } }, '"r.io": "auth" must be base64 of "username:password"'],
  ['username without password', { auths: { 'r.io': { username: secret } } }, '"r.io" has no password'],
  ['password without username', { auths: { 'r.io': { password: secret } } }, '"r.io" has no username'],
  ['non-string password', { auths: { 'r.io': { username: 'u', password: 42 } } }, '"password" must be a string'],
  ['entry not an object', { auths: { 'r.io': secret } }, 'entry "r.io" must be an object'],
  ['auths not an object', { auths: [secret] }, '"auths" must be an object'],
];

for (const [name, input, fragment] of broken) {
  test(`invalid config: ${name} → E_CREDENTIALS_INVALID naming the key, never the secret`, () => {
    try {
      parseDockerConfig(input as string);
      assert.unreachable('accepted');
    } catch (error) {
      assert.instance(error, CredentialsError);
      const e = error as CredentialsError;
      assert.is(e.code, 'E_CREDENTIALS_INVALID');
      assert.ok(e.message.includes(fragment), e.message);
      const everything = e.message + JSON.stringify(e) + inspect(e, { depth: 10 }) + String(e.stack);
      assert.not.ok(everything.includes(secret), 'secret leaked');
      assert.not.ok(everything.includes(b64(secret)), 'encoded secret leaked');
    }
  });
}

test('a credential prints and serialises redacted', () => {
  const config = parseDockerConfig({ auths: { 'r.io': auth('user', secret), 'q.io': { identitytoken: secret }, 'p.io': { registrytoken: secret } } });
  const printed = JSON.stringify(config) + inspect(config, { depth: 10 }) + String(config.entries.map((e) => e.credential));
  assert.not.ok(printed.includes(secret), printed);
  assert.ok(printed.includes('"key":"r.io"'));
});

test.run();
