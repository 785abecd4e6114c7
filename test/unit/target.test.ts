// resolveTarget: where an image goes, from the registry option and the docker config, the way
// Kubeless names it (<host>/<username>/<function> when the registry gives no namespace).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BuilderError } from '../../lib/errors.ts';
import { parseDockerConfig } from '../../lib/registry/credentials.ts';
import { LOCAL_REGISTRY_HOST, pullRepository, resolveTarget } from '../../lib/target.ts';

function config(entries: Record<string, string>) {
  const auths: Record<string, { auth: string }> = {};
  for (const [key, username] of Object.entries(entries)) auths[key] = { auth: Buffer.from(`${username}:secret-pw`).toString('base64') };
  return parseDockerConfig({ auths });
}

function targetError(options: Parameters<typeof resolveTarget>[0]): BuilderError {
  try {
    resolveTarget(options);
  } catch (error) {
    assert.instance(error, BuilderError);
    assert.is((error as BuilderError).code, 'E_TARGET_INVALID');
    assert.is((error as BuilderError).kind, 'user');
    assert.not.match((error as Error).message, 'secret-pw');
    return error as BuilderError;
  }
  return assert.unreachable(`expected E_TARGET_INVALID for ${JSON.stringify(options.registry)}`) as never;
}

const repository = (options: Parameters<typeof resolveTarget>[0]) => resolveTarget(options).repository;

test('a registry without a namespace takes the username of its docker config entry (the Kubeless default)', () => {
  const dockerConfig = config({ 'reg.example.com': 'alice', 'other.example.com': 'bob' });
  const target = resolveTarget({ registry: 'reg.example.com', dockerConfig, functionName: 'hello' });
  assert.equal({ host: target.host, path: target.path, repository: target.repository }, { host: 'reg.example.com', path: 'alice/hello', repository: 'reg.example.com/alice/hello' });
  assert.match(target.reason, '"reg.example.com"');
  assert.is(repository({ registry: 'reg.example.com/team', dockerConfig, functionName: 'hello' }), 'reg.example.com/team/hello', 'a given namespace wins');
  assert.is(repository({ registry: 'bare.example.com:5000', dockerConfig, functionName: 'hello' }), 'bare.example.com:5000/hello', 'no credential, no namespace');
  assert.is(repository({ registry: 'reg.example.com/', dockerConfig, functionName: 'hello' }), 'reg.example.com/alice/hello');
});

test('the Kubeless server forms: https://index.docker.io/v1/ is Docker Hub, http://host:5000/v2 is host:5000', () => {
  const dockerConfig = config({ 'https://index.docker.io/v1/': 'bob', 'http://h:5000/v2': 'carol' });
  assert.is(repository({ registry: 'https://index.docker.io/v1/', dockerConfig, functionName: 'hello' }), 'docker.io/bob/hello');
  assert.is(repository({ registry: 'http://h:5000/v2', dockerConfig, functionName: 'hello' }), 'h:5000/carol/hello');
  assert.is(repository({ registry: 'https://h:5000/v1/team', dockerConfig, functionName: 'hello' }), 'h:5000/v1/team/hello', 'only a trailing /v1 or /v2 is the API path');
});

test('without a registry: the only docker config entry names host and namespace; none or several is E_TARGET_INVALID', () => {
  assert.is(repository({ dockerConfig: config({ 'http://h:5000/v2': 'carol' }), functionName: 'hello' }), 'h:5000/carol/hello');
  assert.is(repository({ registry: '  ', dockerConfig: config({ 'reg.example.com': 'alice' }), functionName: 'hello' }), 'reg.example.com/alice/hello', 'a blank registry counts as none');
  const several = targetError({ dockerConfig: config({ 'reg.example.com': 'alice', 'other.example.com': 'bob' }), functionName: 'hello' });
  assert.match(several.message, '2 entries ("reg.example.com", "other.example.com")');
  assert.equal(several.details.keys, ['reg.example.com', 'other.example.com']);
  assert.match(targetError({ functionName: 'hello' }).message, 'no target registry');
  assert.match(targetError({ dockerConfig: config({}), functionName: 'hello' }).message, 'no target registry');
});

test('a name no image reference can hold is E_TARGET_INVALID naming it', () => {
  const upper = targetError({ registry: 'reg.example.com', dockerConfig: config({ 'reg.example.com': 'Alice' }), functionName: 'hello' });
  assert.match(upper.message, 'reg.example.com/Alice/hello');
  assert.match(upper.message, 'lower-case namespace');
  targetError({ registry: 'reg.example.com/Team', functionName: 'hello' });
  assert.match(targetError({ registry: 'https://', functionName: 'hello' }).message, 'names no host');
});

test('an image name past 255 characters says which part to shorten: the function name, by how much, or the registry path', () => {
  const longName = `fn-${'a'.repeat(247)}`;
  const byName = targetError({ registry: 'reg.example.com:5000/team', functionName: longName });
  assert.match(byName.message, 'is longer than 255 characters, the most a registry accepts (276: the registry path "reg.example.com:5000/team" has 25, the function name 250)');
  assert.match(byName.message, 'shorten the function name (metadata.name) to at most 229 characters, or the registry path by 21');
  assert.equal(byName.details, { repository: `reg.example.com:5000/team/${longName}`, limit: 255, length: 276, registryPath: 'reg.example.com:5000/team', functionName: longName, functionNameMax: 229 });
  // Long and also against another rule: that rule is told first, not the length.
  const upperAndLong = targetError({ registry: 'reg.example.com/Team', functionName: longName });
  assert.match(upperAndLong.message, 'lower-case namespace');
  assert.not.match(upperAndLong.message, 'longer than');
  // A name that fits exactly is taken.
  assert.is(repository({ registry: 'reg.example.com:5000/team', functionName: 'b'.repeat(229) }).length, 255);

  const longNamespace = `reg.example.com/${'n'.repeat(250)}`;
  const byPath = targetError({ registry: longNamespace, functionName: 'hello' });
  assert.match(byPath.message, 'the function name 5); shorten the registry path by at least 17 characters: by itself it leaves no room for the function name');
  assert.not.match(byPath.message, 'metadata.name');
  assert.is(byPath.details.functionNameMax, 0);

  const pushed = resolveTarget({ registry: 'reg.example.com/team', functionName: 'b'.repeat(200) });
  const pull = (pullRegistry: string) => {
    try {
      pullRepository(pushed, pullRegistry);
    } catch (error) {
      assert.is((error as BuilderError).code, 'E_TARGET_INVALID');
      return error as BuilderError;
    }
    return assert.unreachable('expected E_TARGET_INVALID') as never;
  };
  const byPull = pull(`localhost:5000/${'p'.repeat(60)}`);
  assert.match(byPull.message, 'the pull name "localhost:5000/');
  assert.match(byPull.message, 'longer than 255 characters, the most a registry accepts (276: the pull path');
  assert.match(byPull.message, 'or the pull path (from pull registry "localhost:5000/ppp');
  assert.is(byPull.details.pullRegistry, `localhost:5000/${'p'.repeat(60)}`);
  // A pull registry without a namespace keeps the push path, which only its own setting shortens.
  const longPushed = resolveTarget({ registry: `reg.example.com/${'t'.repeat(30)}`, functionName: 'b'.repeat(200) });
  let hostOnly: BuilderError | undefined;
  try {
    pullRepository(longPushed, `a-longer-pull-host.example.com:5000`);
  } catch (error) {
    hostOnly = error as BuilderError;
  }
  assert.ok(hostOnly, 'the longer pull host makes the name too long');
  assert.match(hostOnly!.message, 'pull host "a-longer-pull-host.example.com:5000" with the push path; give the pull registry as "host/namespace" to choose another');
});

test('local builds without a registry go to kubeless.local; with one, to it', () => {
  const local = resolveTarget({ functionName: 'hello', local: true });
  assert.equal([local.host, local.repository], [LOCAL_REGISTRY_HOST, 'kubeless.local/hello']);
  assert.is(repository({ functionName: 'hello', local: true, dockerConfig: config({ 'reg.example.com': 'a', 'other.example.com': 'b' }) }), 'kubeless.local/hello');
  assert.is(repository({ registry: 'reg.example.com/team', functionName: 'hello', local: true }), 'reg.example.com/team/hello');
});

test.run();
