import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BuilderError } from '../../lib/errors.ts';
import { findRuntime, listRuntimes, parseRuntimeCatalog } from '../../lib/runtime/catalog.ts';
import { defaultRuntimeCatalog } from '../../lib/runtime/default-catalog.ts';
import { expandEnv, expandVariables } from '../../lib/runtime/expand.ts';

const NODE14 = 'kubeless/nodejs@sha256:f3645b5e8417e5bcc905446e1fac8a7d565be74eeba4fd80c2487c5d43a32a7b';
const referenceCatalog = [{
  ID: 'nodejs', depName: 'package.json', fileNameSuffix: '.js',
  versions: [{ name: 'node14', version: '14', imagePullSecrets: [{ imageSecret: 'pull-me' }],
    images: [
      { phase: 'installation', image: NODE14, command: '/kubeless-npm-install.sh' },
      { phase: 'runtime', image: NODE14, env: { NODE_PATH: '$(KUBELESS_INSTALL_VOLUME)/node_modules' } }] }],
}];

function catalogError(input: unknown, field: RegExp): void {
  try {
    parseRuntimeCatalog(input as object);
  } catch (error) {
    assert.instance(error, BuilderError);
    assert.is((error as BuilderError).code, 'E_CATALOG_INVALID');
    assert.match((error as Error).message, field);
    return;
  }
  return assert.unreachable('expected E_CATALOG_INVALID') as never;
}

test('the same catalog from JSON text, a ConfigMap, its data object, or objects', () => {
  const text = JSON.stringify(referenceCatalog);
  const forms = [
    text,
    Buffer.from(text),
    { 'runtime-images': text, 'enable-build-step': 'true' },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'kubeless-config', namespace: 'kubeless' }, data: { 'runtime-images': text } },
    referenceCatalog,
  ];
  const parsed = forms.map((form) => parseRuntimeCatalog(form));
  for (const catalog of parsed) assert.equal(catalog, parsed[0]);
  const runtime = findRuntime(parsed[0]!, 'nodejs14');
  assert.is(runtime.id, 'nodejs');
  assert.is(runtime.version, '14');
  assert.is(runtime.name, 'node14');
  assert.is(runtime.depName, 'package.json');
  assert.is(runtime.fileNameSuffix, '.js');
  assert.is(runtime.phases.installation?.command, '/kubeless-npm-install.sh');
  assert.equal(runtime.phases.runtime.env, { NODE_PATH: '$(KUBELESS_INSTALL_VOLUME)/node_modules' });
  assert.is(runtime.phases.compilation, undefined);
  assert.equal(runtime.imagePullSecrets, ['pull-me']);
});

test('an unknown runtime lists the runtimes that exist', () => {
  const catalog = parseRuntimeCatalog([...referenceCatalog, { ID: 'python', depName: 'requirements.txt', fileNameSuffix: '.py', versions: [
    { name: 'python38', version: '3.8', images: [{ phase: 'runtime', image: 'python:3.8' }] },
    { name: 'python311', version: '3.11', images: [{ phase: 'runtime', image: 'python:3.11' }] }] }]);
  assert.equal(listRuntimes(catalog), ['nodejs14', 'python3.8', 'python3.11']);
  try {
    findRuntime(catalog, 'nodejs24', 'ns/fn');
    assert.unreachable();
  } catch (error) {
    assert.is((error as BuilderError).code, 'E_RUNTIME_UNKNOWN');
    assert.is((error as BuilderError).kind, 'user');
    assert.is((error as Error).message, 'function ns/fn: spec.runtime "nodejs24" is not in the runtime catalog; available: nodejs14, python3.8, python3.11');
  }
  assert.throws(() => findRuntime(catalog, 'python3.1'), /not in the runtime catalog/);
});

test('invalid catalogs are rejected naming the entry and field', () => {
  catalogError('not json', /runtime-images: is not valid JSON/);
  catalogError({ 'runtime-images': '{}' }, /data\["runtime-images"\]: must be a JSON list/);
  catalogError([{ ID: 'node js', versions: [] }], /\[0\]\.ID/);
  catalogError([{ ID: 'nodejs', depName: '../package.json', versions: [{}] }], /\[0\]\.depName: must be a plain file name/);
  catalogError([{ ID: 'nodejs', fileNameSuffix: '/js', versions: [{}] }], /\[0\]\.fileNameSuffix/);
  catalogError([{ ID: 'nodejs', versions: [] }], /\[0\]\.versions: must be a non-empty list/);
  catalogError([{ ID: 'nodejs', versions: [{ version: '14', images: [{ phase: 'installation', image: 'node:14' }] }] }], /versions\[0\]\.images: must have a runtime phase/);
  catalogError([{ ID: 'nodejs', versions: [{ version: '14', images: [{ phase: 'build', image: 'node:14' }] }] }], /images\[0\]\.phase: must be one of installation, compilation, runtime/);
  catalogError([{ ID: 'nodejs', versions: [{ version: '14', images: [{ phase: 'runtime', image: 'Not An Image' }] }] }], /images\[0\]\.image/);
  catalogError([{ ID: 'nodejs', versions: [{ version: '14', images: [{ phase: 'runtime', image: 'node:14', env: { A: 'x\nRUN evil' } }] }] }], /env\.A: must not contain line breaks/);
  catalogError([{ ID: 'nodejs', versions: [{ version: '14', images: [{ phase: 'runtime', image: 'node:14', env: { 'A B': 'x' } }] }] }], /not an environment variable name/);
  catalogError([{ ID: 'nodejs', versions: [{ version: 'v14', images: [{ phase: 'runtime', image: 'node:14' }] }] }], /versions\[0\]\.version/);
  catalogError([{ ID: 'nodejs', versions: [{ version: '14', runtimeImage: 'node:14' }, { version: '14', runtimeImage: 'node:14' }] }], /runtime nodejs14 is defined twice/);
});

test('the older catalog form (runtimeImage, initImage) is read too', () => {
  const catalog = parseRuntimeCatalog([{ ID: 'ruby', depName: 'Gemfile', fileNameSuffix: '.rb', versions: [{ name: 'ruby26', version: '2.6', runtimeImage: 'kubeless/ruby:2.6', initImage: 'bitnami/ruby:2.6' }] }]);
  const runtime = findRuntime(catalog, 'ruby2.6');
  assert.is(runtime.phases.runtime.image, 'kubeless/ruby:2.6');
  assert.is(runtime.phases.installation?.image, 'bitnami/ruby:2.6');
});

test('the default catalog holds the upstream Kubeless runtimes, nodejs 10, 12 and 14 pinned by digest', () => {
  const catalog = defaultRuntimeCatalog();
  const runtimes = listRuntimes(catalog);
  for (const runtime of ['nodejs10', 'nodejs12', 'nodejs14', 'python3.6', 'python3.7', 'python3.8', 'ruby2.6', 'php7.4', 'go1.14', 'java11', 'ballerina0.981.0']) {
    assert.ok(runtimes.includes(runtime), runtime);
  }
  assert.is(findRuntime(catalog, 'nodejs14').phases.runtime.image, NODE14);
  for (const pinned of ['nodejs10', 'nodejs12', 'nodejs14']) {
    const { installation, runtime } = findRuntime(catalog, pinned).phases;
    for (const image of [installation?.image, runtime.image]) assert.match(String(image), /^kubeless\/nodejs@sha256:[0-9a-f]{64}$/, pinned);
  }
  assert.is.not(findRuntime(catalog, 'nodejs10').phases.runtime.image, findRuntime(catalog, 'nodejs12').phases.runtime.image);
  assert.is(findRuntime(catalog, 'python3.8').phases.installation?.command, 'pip install --prefix=$KUBELESS_INSTALL_VOLUME -r $KUBELESS_DEPS_FILE');
  assert.is(findRuntime(catalog, 'go1.14').phases.compilation?.command, '/compile-function.sh');
  // A caller changing its copy does not change the next caller's.
  findRuntime(catalog, 'nodejs14').phases.runtime.env.X = 'y';
  assert.is(findRuntime(defaultRuntimeCatalog(), 'nodejs14').phases.runtime.env.X, undefined);
});

test('$(VAR) expansion follows the Kubernetes rules', () => {
  const vars = { KUBELESS_INSTALL_VOLUME: '/kubeless', EMPTY: '', NESTED: '$(KUBELESS_INSTALL_VOLUME)' };
  const table: [string, string][] = [
    ['$(KUBELESS_INSTALL_VOLUME)/node_modules', '/kubeless/node_modules'],
    ['a:$(KUBELESS_INSTALL_VOLUME):$(KUBELESS_INSTALL_VOLUME)', 'a:/kubeless:/kubeless'],
    ['$(UNDEFINED)/x', '$(UNDEFINED)/x'],
    ['$$(KUBELESS_INSTALL_VOLUME)', '$(KUBELESS_INSTALL_VOLUME)'],
    ['$$$(KUBELESS_INSTALL_VOLUME)', '$/kubeless'],
    ['$$', '$'],
    ['$HOME and ${HOME}', '$HOME and ${HOME}'],
    ['$(KUBELESS_INSTALL_VOLUME', '$(KUBELESS_INSTALL_VOLUME'],
    // As Kubernetes' expansion.go: after an unterminated "$(" the rest is read on, "$$" included.
    ['$(a$$', '$(a$'],
    ['$(x $$(KUBELESS_INSTALL_VOLUME', '$(x $(KUBELESS_INSTALL_VOLUME'],
    // The name runs to the first ")", whatever it holds.
    ['$(a$(KUBELESS_INSTALL_VOLUME)', '$(a$(KUBELESS_INSTALL_VOLUME)'],
    ['$((KUBELESS_INSTALL_VOLUME))', '$((KUBELESS_INSTALL_VOLUME))'],
    ['tail $', 'tail $'],
    ['$()', '$()'],
    ['[$(EMPTY)]', '[]'],
    ['$(NESTED)', '$(KUBELESS_INSTALL_VOLUME)'],
    ['no references', 'no references'],
  ];
  for (const [input, expected] of table) assert.is(expandVariables(input, vars), expected, input);
});

test('expandEnv: later entries see earlier ones, not the other way round', () => {
  const env = expandEnv({ A: '$(BASE)/a', B: '$(A)/b', C: '$(D)', D: 'd' }, { BASE: '/base' });
  assert.equal(env, { A: '/base/a', B: '/base/a/b', C: '$(D)', D: 'd' });
  assert.equal(Object.keys(env), ['A', 'B', 'C', 'D']);
  assert.equal(expandEnv([['X', '1'], ['Y', '$(X)2']]), { X: '1', Y: '12' });
});

test.run();
