import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FunctionInvalidError } from '../../lib/function/errors.ts';
import { parseFunction, parseFunctions } from '../../lib/function/parse.ts';
import { type FunctionSpec } from '../../lib/function/spec.ts';

type Json = Record<string, unknown>;

function fn(spec: Json = {}, metadata: Json = { name: 'hello', namespace: 'team-a' }, extra: Json = {}): Json {
  return {
    apiVersion: 'kubeless.io/v1beta1',
    kind: 'Function',
    metadata,
    spec: { handler: 'handler.hello', runtime: 'nodejs14', function: 'module.exports = {}', ...spec },
    ...extra,
  };
}

function deployment(container: Json): Json {
  return { deployment: { spec: { template: { spec: { containers: [container] } } } } };
}

function invalid(input: unknown): FunctionInvalidError {
  try {
    parseFunctions(input as object);
  } catch (error) {
    assert.instance(error, FunctionInvalidError);
    return error as FunctionInvalidError;
  }
  return assert.unreachable('expected E_FUNCTION_INVALID, parsing succeeded') as never;
}

test('the reference example parses with Kubeless defaults', () => {
  const spec = parseFunction(`apiVersion: kubeless.io/v1beta1
kind: Function
metadata: {name: hello, namespace: default}
spec:
  handler: handler.hello
  runtime: nodejs14
  function: |
    module.exports = { hello: (event, context) => 'hello ' + event.data }
`);
  assert.equal(spec.handler, { module: 'handler', function: 'hello' });
  assert.is(spec.runtime, 'nodejs14');
  assert.equal(spec.contentType, { source: 'text', depsIncluded: false });
  assert.is(spec.timeout, '180');
  assert.is(spec.namespace, 'default');
  assert.is(spec.checksum, undefined);
  assert.is(spec.deps, undefined);
  assert.equal(spec.env, []);
  assert.ok(spec.function.startsWith('module.exports'));
});

test('YAML with several documents, JSON, objects, arrays and a List all give every Function', () => {
  const yaml = `---\n${JSON.stringify(fn({}, { name: 'a' }))}\n---\n---\napiVersion: kubeless.io/v1beta1\nkind: Function\nmetadata: {name: b}\nspec: {handler: m.f, runtime: python3.8, function: x}\n`;
  assert.equal(parseFunctions(yaml).map((s) => s.name), ['a', 'b']);
  assert.equal(parseFunctions(Buffer.from(JSON.stringify(fn()))).map((s) => s.name), ['hello']);
  assert.equal(parseFunctions([fn({}, { name: 'x' }), fn({}, { name: 'y' })]).map((s) => s.name), ['x', 'y']);
  assert.equal(parseFunctions({ apiVersion: 'v1', kind: 'List', items: [fn({}, { name: 'z' })] }).map((s) => s.name), ['z']);
  assert.throws(() => parseFunction([fn(), fn()]), /exactly one Function, found 2/);
  assert.throws(() => parseFunctions('---\n'), /holds no Function/);
});

test('every content type form is understood', () => {
  const table: [string | undefined, FunctionSpec['contentType'], string][] = [
    [undefined, { source: 'text', depsIncluded: false }, 'x'],
    ['', { source: 'text', depsIncluded: false }, 'x'],
    ['text', { source: 'text', depsIncluded: false }, 'x'],
    ['base64', { source: 'base64', depsIncluded: false }, 'aGk='],
    ['base64+zip', { source: 'base64', archive: 'zip', depsIncluded: false }, 'aGk='],
    ['base64+compressedtar+deps', { source: 'base64', archive: 'compressedtar', depsIncluded: true }, 'aGk='],
    ['url', { source: 'url', depsIncluded: false }, 'https://example.test/f.js'],
    ['url+zip+deps', { source: 'url', archive: 'zip', depsIncluded: true }, 'http://example.test/f.zip'],
    ['url+compressedtar', { source: 'url', archive: 'compressedtar', depsIncluded: false }, 'https://example.test/f.tgz'],
  ];
  for (const [type, expected, source] of table) {
    const spec = parseFunction(fn({ 'function-content-type': type, function: source }));
    assert.equal(spec.contentType, expected, String(type));
  }
});

test('fields are normalised: checksum lower case, numeric timeout, env, prebuilt image', () => {
  const spec = parseFunction(fn({
    checksum: `sha256:${'AB'.repeat(32)}`,
    timeout: 30,
    deps: '{"dependencies": {}}',
    ...deployment({ image: 'registry.test/fns/hello:1', env: [{ name: 'NPM_REGISTRY', value: 'http://npm.test' }, { name: 'EMPTY' }] }),
  }, { name: 'hello', namespace: 'team-a', uid: 'u-1', labels: { a: 'b' } }));
  assert.is(spec.checksum, `sha256:${'ab'.repeat(32)}`);
  assert.is(spec.timeout, '30');
  assert.is(spec.deps, '{"dependencies": {}}');
  assert.is(spec.uid, 'u-1');
  assert.equal(spec.env, [{ name: 'NPM_REGISTRY', value: 'http://npm.test' }, { name: 'EMPTY', value: '' }]);
  assert.is(spec.prebuiltImage, 'registry.test/fns/hello:1');
});

test('env from valueFrom is left out with a warning naming it', () => {
  const spec = parseFunction(fn(deployment({ env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }, { name: 'A', value: '1' }] })));
  assert.equal(spec.env, [{ name: 'A', value: '1' }]);
  assert.is(spec.warnings.length, 1);
  assert.match(spec.warnings[0] ?? '', /containers\[0\]\.env\[0\] \(TOKEN\) uses valueFrom/);
});

// [case, input, field, expectation in the message]
const invalidTable: [string, unknown, string, RegExp][] = [
  ['wrong apiVersion', fn({}, undefined, { apiVersion: 'kubeless.io/v1' }), 'apiVersion', /must be kubeless\.io\/v1beta1/],
  ['wrong kind', fn({}, undefined, { kind: 'Deployment' }), 'kind', /must be Function/],
  ['no name', fn({}, {}), 'metadata.name', /is required/],
  ['upper-case name', fn({}, { name: 'Hello' }), 'metadata.name', /DNS-1123/],
  ['bad namespace', fn({}, { name: 'a', namespace: 'Team_A' }), 'metadata.namespace', /DNS-1123/],
  ['no spec', { apiVersion: 'kubeless.io/v1beta1', kind: 'Function', metadata: { name: 'a' } }, 'spec', /object/],
  ['no handler', fn({ handler: undefined }), 'spec.handler', /is required/],
  ['handler without dot', fn({ handler: 'handler' }), 'spec.handler', /exactly one "\."/],
  ['handler with two dots', fn({ handler: 'a.b.c' }), 'spec.handler', /exactly one "\."/],
  ['module with slash', fn({ handler: '../etc/passwd.x' }), 'spec.handler', /exactly one|file name/],
  ['module with slash only', fn({ handler: 'lib/handler.x' }), 'spec.handler', /must be a file name/],
  ['module with space', fn({ handler: 'my handler.x' }), 'spec.handler', /must be a file name/],
  ['function with quote', fn({ handler: 'handler.he"llo' }), 'spec.handler', /must be an identifier/],
  ['empty function name', fn({ handler: 'handler.' }), 'spec.handler', /must be an identifier/],
  ['no runtime', fn({ runtime: undefined }), 'spec.runtime', /is required/],
  ['runtime without version', fn({ runtime: 'nodejs' }), 'spec.runtime', /runtime ID followed by its version/],
  ['runtime with suffix', fn({ runtime: 'nodejs14-alpine' }), 'spec.runtime', /runtime ID followed by its version/],
  ['no source', fn({ function: undefined }), 'spec.function', /is required/],
  ['unknown content type', fn({ 'function-content-type': 'gzip' }), 'spec.function-content-type', /text, base64 or url/],
  ['unknown modifier', fn({ 'function-content-type': 'base64+rar' }), 'spec.function-content-type', /unknown part "rar"/],
  ['two archive formats', fn({ 'function-content-type': 'base64+zip+compressedtar', function: 'aGk=' }), 'spec.function-content-type', /two archive formats/],
  ['text archive', fn({ 'function-content-type': 'text+zip' }), 'spec.function-content-type', /cannot be plain text/],
  ['deps without archive', fn({ 'function-content-type': 'base64+deps', function: 'aGk=' }), 'spec.function-content-type', /needs \+zip or \+compressedtar/],
  ['bad base64', fn({ 'function-content-type': 'base64', function: 'not*base64' }), 'spec.function', /not valid base64/],
  ['base64 without padding', fn({ 'function-content-type': 'base64', function: 'aGk' }), 'spec.function', /not valid base64/],
  ['ftp url', fn({ 'function-content-type': 'url', function: 'ftp://example.test/f.js' }), 'spec.function', /http:\/\/ or https:\/\//],
  ['relative url', fn({ 'function-content-type': 'url', function: 'f.js' }), 'spec.function', /absolute http/],
  ['md5 checksum', fn({ checksum: `md5:${'a'.repeat(32)}` }), 'spec.checksum', /uses md5; only sha256/],
  ['short checksum', fn({ checksum: 'sha256:abc' }), 'spec.checksum', /sha256:<64 hex digits>/],
  ['bare hex checksum', fn({ checksum: 'a'.repeat(64) }), 'spec.checksum', /sha256:<64 hex digits>/],
  ['zero timeout', fn({ timeout: '0' }), 'spec.timeout', /positive whole number/],
  ['negative timeout', fn({ timeout: '-5' }), 'spec.timeout', /positive whole number/],
  ['fractional timeout', fn({ timeout: '1.5' }), 'spec.timeout', /positive whole number/],
  ['word timeout', fn({ timeout: '3m' }), 'spec.timeout', /positive whole number/],
  ['deps not a string', fn({ deps: { dependencies: {} } }), 'spec.deps', /must be a string/],
  ['containers not a list', fn({ deployment: { spec: { template: { spec: { containers: {} } } } } }), 'spec.deployment.spec.template.spec.containers', /list of containers/],
  ['env not a list', fn(deployment({ env: { A: '1' } })), 'spec.deployment.spec.template.spec.containers[0].env', /list/],
  ['env name with =', fn(deployment({ env: [{ name: 'A=B', value: '1' }] })), 'spec.deployment.spec.template.spec.containers[0].env[0].name', /environment variable name/],
  ['env name leading dash', fn(deployment({ env: [{ name: '-x', value: '1' }] })), 'spec.deployment.spec.template.spec.containers[0].env[0].name', /environment variable name/],
  ['env value a number', fn(deployment({ env: [{ name: 'A', value: 1 }] })), 'spec.deployment.spec.template.spec.containers[0].env[0].value', /must be a string/],
  ['prebuilt image invalid', fn(deployment({ image: 'Not A Ref' })), 'spec.deployment.spec.template.spec.containers[0].image', /whitespace|invalid/],
];

for (const [name, input, field, expected] of invalidTable) {
  test(`invalid: ${name} → E_FUNCTION_INVALID naming ${field}`, () => {
    const error = invalid(input);
    assert.is(error.code, 'E_FUNCTION_INVALID');
    assert.is(error.kind, 'user');
    assert.is(error.field, field);
    assert.ok(error.message.includes(field), `message names the field: ${error.message}`);
    assert.match(error.message, expected);
    if (field !== 'metadata.name' && field !== 'metadata.namespace' && field !== 'spec') {
      assert.ok(error.message.startsWith('function team-a/hello'), `message names the function: ${error.message}`);
    }
  });
}

test('a bad document in a multi-document file is named by its position', () => {
  const yaml = `${JSON.stringify(fn({}, { name: 'good' }))}\n---\n${JSON.stringify(fn({ handler: 'nodot' }, { name: 'bad' }))}\n`;
  const error = invalid(yaml);
  assert.match(error.message, /^function default\/bad \(document 2\): spec\.handler/);
  assert.throws(() => parseFunctions('spec: [unclosed'), /document 1: is not valid YAML or JSON/);
});

test('JSON with a key given twice in one object is E_FUNCTION_INVALID naming its path, at any depth and however the key is escaped', () => {
  const text = JSON.stringify(fn());
  const cases: [string, string][] = [
    [text.replace('"spec":{', '"spec":{"function":"module.exports = { evil: 1 }",'), 'spec.function'],
    [text.replace(/}$/, `,"spec":${JSON.stringify(fn().spec)}}`), 'spec'],
    [text.replace('"spec":{', '"sp\\u0065c":{},"spec":{'), 'spec'],
    [`{"kind":"List","items":[${text},${text.replace('{"apiVersion"', '{"kind":"Function","apiVersion"')}]}`, 'items[1].kind'],
    [JSON.stringify(fn(deployment({ name: 'c', env: [] }))).replace('"env":[]', '"env":[],"env":[]'), 'spec.deployment.spec.template.spec.containers[0].env'],
    [JSON.stringify(fn({}, { name: 'hello', labels: { 'app.kubernetes.io/name': 'a' } })).replace('{"app', '{"app.kubernetes.io/name":"b","app'), 'metadata.labels["app.kubernetes.io/name"]'],
  ];
  for (const [input, path] of cases) {
    const error = invalid(input);
    assert.is(error.code, 'E_FUNCTION_INVALID');
    assert.is(error.field, path, input);
    assert.match(error.message, `${path}: is given twice in one JSON object`);
  }
  // Equal keys in different objects are no duplicates; neither are values equal to a key.
  const fine = JSON.stringify(fn(deployment({ name: 'c', env: [{ name: 'A', value: 'name' }, { name: 'B', value: 'x' }] })));
  assert.is(parseFunction(fine).env.length, 2);
});

test('YAML with a key given twice is refused too (by the YAML parser)', () => {
  const yaml = 'apiVersion: kubeless.io/v1beta1\nkind: Function\nmetadata:\n  name: hello\nspec:\n  handler: handler.hello\n  runtime: nodejs14\n  function: a\n  function: b\n';
  const error = invalid(yaml);
  assert.match(error.message, /document 1: is not valid YAML or JSON: Map keys must be unique/);
});

test.run();
