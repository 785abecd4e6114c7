import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseReference, ImageReferenceError } from '../../lib/image/reference.ts';

const D = 'sha256:' + 'a'.repeat(64);

// input → [registry, repository, tag, digest, toString()]
const valid: Array<[string, string, string, string | undefined, string | undefined, string]> = [
  ['node', 'docker.io', 'library/node', undefined, undefined, 'docker.io/library/node'],
  ['node:24', 'docker.io', 'library/node', '24', undefined, 'docker.io/library/node:24'],
  ['kubeless/nodejs:24', 'docker.io', 'kubeless/nodejs', '24', undefined, 'docker.io/kubeless/nodejs:24'],
  ['docker.io/node', 'docker.io', 'library/node', undefined, undefined, 'docker.io/library/node'],
  ['index.docker.io/library/node:24', 'docker.io', 'library/node', '24', undefined, 'docker.io/library/node:24'],
  ['index.docker.io/node', 'docker.io', 'library/node', undefined, undefined, 'docker.io/library/node'],
  ['registry-1.docker.io/bitnami/redis', 'docker.io', 'bitnami/redis', undefined, undefined, 'docker.io/bitnami/redis'],
  ['localhost/fn', 'localhost', 'fn', undefined, undefined, 'localhost/fn'],
  ['localhost:5000/fn:v1', 'localhost:5000', 'fn', 'v1', undefined, 'localhost:5000/fn:v1'],
  ['127.0.0.1:5000/a/b/c:t', '127.0.0.1:5000', 'a/b/c', 't', undefined, '127.0.0.1:5000/a/b/c:t'],
  ['192.168.99.100:5000/kubeless/fn', '192.168.99.100:5000', 'kubeless/fn', undefined, undefined, '192.168.99.100:5000/kubeless/fn'],
  ['[::1]:5000/fn', '[::1]:5000', 'fn', undefined, undefined, '[::1]:5000/fn'],
  ['ghcr.io/org/fn@' + D, 'ghcr.io', 'org/fn', undefined, D, 'ghcr.io/org/fn@' + D],
  ['ghcr.io/org/fn:1.0@' + D, 'ghcr.io', 'org/fn', '1.0', D, 'ghcr.io/org/fn:1.0@' + D],
  ['node@' + D, 'docker.io', 'library/node', undefined, D, 'docker.io/library/node@' + D],
  ['Registry.Example.COM/app', 'registry.example.com', 'app', undefined, undefined, 'registry.example.com/app'],
  ['123456789.dkr.ecr.eu-west-1.amazonaws.com/fn:abc', '123456789.dkr.ecr.eu-west-1.amazonaws.com', 'fn', 'abc', undefined, '123456789.dkr.ecr.eu-west-1.amazonaws.com/fn:abc'],
  ['a/b__c/d-e/f.g_h:T_1.x-y', 'docker.io', 'a/b__c/d-e/f.g_h', 'T_1.x-y', undefined, 'docker.io/a/b__c/d-e/f.g_h:T_1.x-y'],
  ['r.io/a--b', 'r.io', 'a--b', undefined, undefined, 'r.io/a--b'],
  ['r.io/x:' + 't'.repeat(128), 'r.io', 'x', 't'.repeat(128), undefined, 'r.io/x:' + 't'.repeat(128)],
];

for (const [input, registry, repository, tag, digest, text] of valid) {
  test(`valid: ${input.length > 60 ? input.slice(0, 60) + '…' : input}`, () => {
    const ref = parseReference(input);
    assert.is(ref.registry, registry);
    assert.is(ref.repository, repository);
    assert.is(ref.tag, tag);
    assert.is(ref.digest, digest);
    assert.is(ref.name, `${registry}/${repository}`);
    assert.is(ref.toString(), text);
    assert.equal(parseReference(text).toString(), text, 'the normalised form parses to itself');
  });
}

test('digest wins over a tag; no tag means latest', () => {
  assert.is(parseReference('ghcr.io/org/fn:1.0@' + D).tagOrDigest, D);
  assert.is(parseReference('ghcr.io/org/fn:1.0').tagOrDigest, '1.0');
  assert.is(parseReference('ghcr.io/org/fn').tagOrDigest, 'latest');
  assert.is(parseReference('node:24').withDigest(D).toString(), 'docker.io/library/node@' + D);
});

// input → a fragment of the rule the message must name
const invalid: Array<[string, string]> = [
  ['', 'must not be empty'],
  [' node', 'whitespace'],
  ['no de', 'whitespace'],
  ['https://ghcr.io/org/fn', 'no URL scheme'],
  ['Node', 'lower case'],
  ['ghcr.io/Org/fn', 'lower case'],
  ['r.io/a//b', 'empty components'],
  ['r.io/a/', 'empty components'],
  ['r.io/-a', 'path component "-a"'],
  ['r.io/a_', 'path component "a_"'],
  ['r.io/a___b', 'path component "a___b"'],
  ['r.io/a..b', 'path component "a..b"'],
  ['node:', 'tag after ":" must not be empty'],
  ['node:.x', 'tag may contain only'],
  ['node:-x', 'tag may contain only'],
  ['node:a+b', 'tag may contain only'],
  ['r.io/x:' + 't'.repeat(129), 'at most 128'],
  ['r.io:/x', 'registry port ""'],
  ['r.io:99999/x', 'registry port "99999"'],
  ['r.io:5x/x', 'registry port "5x"'],
  ['-r.io/x', 'registry host "-r.io"'],
  ['r_x.io/x', 'registry host "r_x.io"'],
  ['[::1/x', 'IPv6'],
  ['node@sha256:abc', 'sha256 digest must be 64'],
  ['node@sha256:' + 'A'.repeat(64), 'lower-case hex'],
  ['node@md5:' + 'a'.repeat(32), 'algorithm "md5" is not supported'],
  ['node@', 'algorithm:hex'],
  [':tag', 'repository name is missing'],
  ['r.io/' + 'a'.repeat(260), 'longer than 255'],
  ['docker.io/' + 'a/'.repeat(125) + 'b', 'longer than 255'],
];

for (const [input, rule] of invalid) {
  test(`invalid (${rule}): ${input.length > 40 ? input.slice(0, 40) + '…' : JSON.stringify(input)}`, () => {
    try {
      parseReference(input);
      assert.unreachable(`${input} was accepted`);
    } catch (error) {
      assert.instance(error, ImageReferenceError);
      const e = error as ImageReferenceError;
      assert.is(e.code, 'E_REFERENCE_INVALID');
      assert.is(e.kind, 'user');
      assert.ok(e.message.includes(JSON.stringify(input)), `message quotes the input: ${e.message}`);
      assert.ok(e.message.includes(rule), `message names the rule "${rule}": ${e.message}`);
    }
  });
}

test.run();
