// The public surface, pinned: what `function-image-builder` and `function-image-builder/kubernetes`
// export. Changing either list is a deliberate change of the API (and of this test).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..', '..');

const ROOT_EXPORTS = [
  'BuilderError',
  'EXIT_INFRASTRUCTURE_ERROR',
  'EXIT_INTERNAL_ERROR',
  'EXIT_OK',
  'EXIT_USER_ERROR',
  'buildFunctionImage',
  'closeRegistryConnections',
  'defaultRuntimeCatalog',
  'exitCodeFor',
  'findRuntime',
  'functionImageTag',
  'listRuntimes',
  'parseDockerConfig',
  'parseFunction',
  'parseFunctions',
  'parseReference',
  'parseRuntimeCatalog',
  'resolveCredentials',
];

const KUBERNETES_EXPORTS = [
  'BuildJobError',
  'DEFAULT_JOB_SETTINGS',
  'DEFAULT_KEEP',
  'KUBELESS_CONFIG_NAME',
  'KUBELESS_NAMESPACE',
  'REGISTRY_SECRET_NAME',
  'buildJobManifest',
  'dockerConfigFromSecret',
  'functionDeploymentPatch',
  'pruneFunctionImages',
  'readBuilderConfig',
  'scheduleBuild',
];

test('the root module exports exactly the listed values', async () => {
  assert.equal(Object.keys(await import('../../lib/index.ts')).sort(), ROOT_EXPORTS);
});

test('the kubernetes subpath exports exactly the listed values', async () => {
  assert.equal(Object.keys(await import('../../lib/kubernetes/index.ts')).sort(), KUBERNETES_EXPORTS);
});

test('package.json maps both entry points to the compiled modules', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, string> };
  assert.equal(pkg.exports, { '.': './dist/lib/index.js', './kubernetes': './dist/lib/kubernetes/index.js' });
});

test('no module re-exports another wholesale (export *)', () => {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && /^export \*/m.test(readFileSync(path, 'utf8'))) found.push(path);
    }
  };
  walk(join(root, 'lib'));
  assert.equal(found, []);
});

test('importing the root does not load @kubernetes/client-node; the kubernetes subpath does', () => {
  const probe = (entry: string) => {
    const script = `
      import { registerHooks } from 'node:module';
      let loaded = false;
      registerHooks({ resolve(specifier, context, next) { if (specifier.startsWith('@kubernetes/client-node')) loaded = true; return next(specifier, context); } });
      await import(${JSON.stringify(join(root, entry))});
      console.log(JSON.stringify({ loaded }));`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.is(run.status, 0, run.stderr);
    return JSON.parse(run.stdout).loaded as boolean;
  };
  assert.is(probe('lib/index.ts'), false);
  assert.is(probe('lib/kubernetes/index.ts'), true, 'the probe sees client-node when it is loaded');
});

test.run();
