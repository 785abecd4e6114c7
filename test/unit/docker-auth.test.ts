// How credentials reach the Engine: X-Registry-Auth / X-Registry-Config are JSON in base64url with
// padding (Go's base64.URLEncoding), Docker Hub under its historic key, and each docker config
// credential form (password, identitytoken, registrytoken) as the Engine's AuthConfig.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeRegistryAuth, encodeRegistryConfig, engineAuth, engineAuthFor, type EngineAuth } from '../../lib/docker/auth.ts';
import { parseDockerConfig, resolveCredentials } from '../../lib/registry/credentials.ts';

/** Decodes the way the daemon does: the URL alphabet only, padding required. */
function goUrlDecode(text: string): unknown {
  assert.match(text, /^[A-Za-z0-9_-]*={0,2}$/, 'URL alphabet only');
  assert.is(text.length % 4, 0, 'padded to a multiple of 4');
  return JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
}

// A password whose JSON has "+" and "/" in its standard base64 and needs padding: searched for over a
// few alignments (a bounded search), then checked, so the test does not rest on one lucky string.
function awkwardAuth(): EngineAuth {
  for (let i = 0; i < 9; i++) {
    const auth = { username: 'u', password: `${'x'.repeat(i % 3)}~~~???${'y'.repeat(Math.floor(i / 3))}`, serveraddress: 'reg.example.com' };
    const standard = Buffer.from(JSON.stringify(auth)).toString('base64');
    if (standard.includes('+') && standard.includes('/') && standard.endsWith('=')) return auth;
  }
  throw new Error('no password with "+", "/" and padding in its base64 among the candidates');
}

test('X-Registry-Auth: "+" and "/" become "-" and "_", the padding stays, and it decodes to the AuthConfig', () => {
  const auth = awkwardAuth();
  const encoded = encodeRegistryAuth(auth);
  assert.not.match(encoded, /[+/]/);
  assert.match(encoded, /[-_]/);
  assert.ok(encoded.endsWith('='), 'padding kept');
  assert.equal(goUrlDecode(encoded), auth);
  assert.equal(goUrlDecode(encodeRegistryAuth(undefined)), {}, 'an anonymous push still sends {}');
});

test('X-Registry-Config: a map by host, with every Docker Hub alias under https://index.docker.io/v1/', () => {
  const hub: EngineAuth = { username: 'hubuser', password: 'hubpw', serveraddress: 'docker.io' };
  const own = awkwardAuth();
  for (const alias of ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']) {
    assert.equal(goUrlDecode(encodeRegistryConfig({ [alias]: hub, '127.0.0.1:5000': own })), { 'https://index.docker.io/v1/': hub, '127.0.0.1:5000': own }, alias);
  }
  assert.equal(goUrlDecode(encodeRegistryConfig({})), {});
});

test('engineAuth: password, identitytoken and registrytoken credentials become the matching AuthConfig', () => {
  const config = parseDockerConfig({
    auths: {
      'basic.example.com': { auth: Buffer.from('alice:pa55').toString('base64') },
      'https://identity.example.com/v1/': { username: '00000000-0000-0000-0000-000000000000', identitytoken: 'refresh-token-value' },
      'token.example.com': { registrytoken: 'bearer-token-value' },
    },
  });
  const auth = (host: string) => engineAuth(resolveCredentials(config, host)!, host);
  assert.equal(auth('basic.example.com'), { username: 'alice', password: 'pa55', serveraddress: 'basic.example.com' });
  assert.equal(auth('identity.example.com'), { username: '00000000-0000-0000-0000-000000000000', identitytoken: 'refresh-token-value', serveraddress: 'identity.example.com' });
  assert.equal(auth('token.example.com'), { registrytoken: 'bearer-token-value', serveraddress: 'token.example.com' });
  assert.equal(goUrlDecode(encodeRegistryAuth(auth('token.example.com'))), { registrytoken: 'bearer-token-value', serveraddress: 'token.example.com' });
});

test('engineAuthFor: the matching entry of a docker config with its key; none for a host without an entry or without a config', () => {
  const config = parseDockerConfig({ auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('bob:s3cret').toString('base64') } } });
  assert.equal(engineAuthFor(config, 'docker.io'), { key: 'https://index.docker.io/v1/', auth: { username: 'bob', password: 's3cret', serveraddress: 'docker.io' } });
  assert.is(engineAuthFor(config, 'other.example.com'), undefined);
  assert.is(engineAuthFor(undefined, 'docker.io'), undefined);
});

test.run();
