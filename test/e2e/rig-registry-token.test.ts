import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { docker, exec } from '../support/docker.ts';
import { dockerClientConfig, probe, startRegistry, type RegistryHandle } from '../support/registry.ts';
import { buildTinyImage, type TinyImage } from '../support/tiny-image.ts';

let registry: RegistryHandle;
const images: TinyImage[] = [];

const MANIFEST_ACCEPT = 'application/vnd.docker.distribution.manifest.v2+json';

function basic(user: { username: string; password: string }): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}` };
}

async function token(scope: string[], headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  const url = new URL(registry.tokenRealm!);
  url.searchParams.set('service', registry.tokenServer!.service);
  for (const s of scope) url.searchParams.append('scope', s);
  const response = await fetch(url, { headers });
  return { status: response.status, body: await response.json() };
}

function claims(jwt: string): any {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString());
}

test.before(async () => {
  registry = await startRegistry('token');
});

test.after(async () => {
  for (const image of images) await image.remove();
  await registry?.stop();
});

test('token registry: 401 with a Bearer challenge naming the realm and service', async () => {
  const response = await fetch(`${registry.url}/v2/`);
  await response.body?.cancel();
  assert.is(response.status, 401);
  const challenge = response.headers.get('www-authenticate') ?? '';
  assert.match(challenge, /^Bearer /);
  assert.ok(challenge.includes(`realm="${registry.tokenRealm}"`), challenge);
  assert.ok(challenge.includes(`service="${registry.tokenServer!.service}"`), challenge);
});

test('token server: wrong password is 401, anonymous gets a token with no access', async () => {
  const wrong = await token(['repository:fib-rig/tiny:pull'], basic({ username: registry.username!, password: 'nope' }));
  assert.is(wrong.status, 401);
  const anonymous = await token(['repository:fib-rig/tiny:pull,push']);
  assert.is(anonymous.status, 200);
  assert.equal(claims(anonymous.body.token).access, []);
  assert.type(anonymous.body.expires_in, 'number');
  // The registry accepts the token as a login but not for the repository.
  assert.is(await probe(`${registry.url}/v2/`, { headers: { authorization: `Bearer ${anonymous.body.token}` } }), 200);
  assert.is(
    await probe(`${registry.url}/v2/fib-rig/tiny/tags/list`, { headers: { authorization: `Bearer ${anonymous.body.token}` } }),
    401,
  );
});

test('token server: grants the intersection of requested scope and the user rights, per repository', async () => {
  const { full, pullOnly } = registry.users!;
  const asked = ['repository:fib-rig/a:pull,push', 'repository:fib-rig/b:pull'];
  const fullToken = await token(asked, basic(full));
  assert.equal(claims(fullToken.body.token).access, [
    { type: 'repository', name: 'fib-rig/a', actions: ['pull', 'push'] },
    { type: 'repository', name: 'fib-rig/b', actions: ['pull'] },
  ]);
  const pullToken = await token(asked, basic(pullOnly));
  assert.equal(claims(pullToken.body.token).access, [
    { type: 'repository', name: 'fib-rig/a', actions: ['pull'] },
    { type: 'repository', name: 'fib-rig/b', actions: ['pull'] },
  ]);
  const team = registry.tokenServer!.addUser({ username: 'fib-team', password: 'team-secret', actions: ['pull', 'push'], repositories: ['team/*'] });
  const teamToken = await token(['repository:team/x:pull,push', 'repository:other/x:pull'], basic(team));
  assert.equal(claims(teamToken.body.token).access, [{ type: 'repository', name: 'team/x', actions: ['pull', 'push'] }]);
  const logged = registry.tokenServer!.requests.at(-1)!;
  assert.is(logged.username, 'fib-team');
  assert.not.ok(JSON.stringify(registry.tokenServer!.requests).includes('team-secret'), 'request log holds no password');
});

test('token server: OAuth2 password and refresh_token grants', async () => {
  const { full } = registry.users!;
  const form = (fields: Record<string, string>) =>
    fetch(registry.tokenRealm!, { method: 'POST', body: new URLSearchParams({ service: registry.tokenServer!.service, ...fields }) });
  const first = await form({ grant_type: 'password', username: full.username, password: full.password, access_type: 'offline', client_id: 'test', scope: 'repository:fib-rig/a:pull' });
  assert.is(first.status, 200);
  const body = (await first.json()) as any;
  assert.ok(body.refresh_token);
  assert.is(body.scope, 'repository:fib-rig/a:pull');
  const refreshed = await form({ grant_type: 'refresh_token', refresh_token: body.refresh_token, client_id: 'test', scope: 'repository:fib-rig/b:pull,push' });
  assert.is(refreshed.status, 200);
  assert.equal(claims(((await refreshed.json()) as any).access_token).access, [{ type: 'repository', name: 'fib-rig/b', actions: ['pull', 'push'] }]);
  const bad = await form({ grant_type: 'refresh_token', refresh_token: 'forged', client_id: 'test' });
  await bad.body?.cancel();
  assert.is(bad.status, 401);
});

test('token registry: full user pushes with docker, pull-only user is refused the push but pulls', async () => {
  const { full, pullOnly } = registry.users!;
  const image = await buildTinyImage(`${registry.host}/fib-rig/tiny`);
  images.push(image);
  const fullConfig = dockerClientConfig(registry, full);
  const pullConfig = dockerClientConfig(registry, pullOnly);
  try {
    const refused = await exec('docker', ['--config', pullConfig.dir, 'push', image.image], { timeoutMs: 60_000 });
    assert.is.not(refused.code, 0, 'pull-only user must not push');
    assert.match(refused.stderr + refused.stdout, /denied|unauthori[sz]ed|insufficient/i);
    const pullRequest = registry.tokenServer!.requests.filter((r) => r.username === pullOnly.username).at(-1)!;
    assert.ok(pullRequest.scopes.some((s) => s.includes('push')), 'docker asked for push');
    assert.not.ok(pullRequest.granted.some((g) => g.actions.includes('push')), 'push was not granted');

    assert.match(await docker(['--config', fullConfig.dir, 'push', image.image]), /digest: sha256:[0-9a-f]{64}/);
    await image.remove();
    await docker(['--config', pullConfig.dir, 'pull', image.image]);
    await image.remove();
    const anonymous = dockerClientConfig(registry, null);
    try {
      const pull = await exec('docker', ['--config', anonymous.dir, 'pull', image.image], { timeoutMs: 60_000 });
      assert.is.not(pull.code, 0, 'anonymous pull must be refused');
    } finally {
      anonymous.cleanup();
    }
  } finally {
    fullConfig.cleanup();
    pullConfig.cleanup();
  }
});

test('token registry: a token is scoped to its repository and action', async () => {
  const { full } = registry.users!;
  const pull = await token(['repository:fib-rig/tiny:pull'], basic(full));
  const bearer = { authorization: `Bearer ${pull.body.token}`, accept: MANIFEST_ACCEPT };
  const tag = images[0]!.tag;
  assert.is(await probe(`${registry.url}/v2/fib-rig/tiny/manifests/${tag}`, { headers: bearer }), 200);
  assert.is(await probe(`${registry.url}/v2/fib-rig/other/manifests/${tag}`, { headers: bearer }), 401);
  const upload = await fetch(`${registry.url}/v2/fib-rig/tiny/blobs/uploads/`, { method: 'POST', headers: bearer });
  await upload.body?.cancel();
  assert.is(upload.status, 401, 'a pull token cannot start an upload');
});

test('token registry: a kid-referenced signing key is accepted, a forged signature is not', async () => {
  const other = await startRegistry('token', { tokenKeyReference: 'kid', tokenTtlSeconds: 120 });
  try {
    const url = new URL(other.tokenRealm!);
    url.searchParams.set('service', other.tokenServer!.service);
    url.searchParams.set('scope', 'repository:fib-rig/x:pull');
    const response = await fetch(url, { headers: basic(other.users!.full) });
    const body = (await response.json()) as any;
    assert.is(body.expires_in, 120);
    const header = JSON.parse(Buffer.from(body.token.split('.')[0], 'base64url').toString());
    assert.match(header.kid, /^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$/);
    assert.is(header.x5c, undefined);
    assert.is(await probe(`${other.url}/v2/`, { headers: { authorization: `Bearer ${body.token}` } }), 200);
    const [h, c, s] = body.token.split('.');
    const forgedClaims = Buffer.from(JSON.stringify({ ...claims(body.token), sub: 'someone-else' })).toString('base64url');
    assert.is(await probe(`${other.url}/v2/`, { headers: { authorization: `Bearer ${h}.${forgedClaims}.${s}` } }), 401);
    assert.ok(c);
    // A token from another registry's token server (other service, other key) is refused too.
    const foreign = await token(['repository:fib-rig/x:pull'], basic(registry.users!.full));
    assert.is(await probe(`${other.url}/v2/`, { headers: { authorization: `Bearer ${foreign.body.token}` } }), 401);
  } finally {
    await other.stop();
  }
});

test.run();
