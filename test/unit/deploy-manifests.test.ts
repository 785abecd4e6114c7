// The manifests shipped in deploy/ (`kubectl apply -f deploy/`): each validates against the Kubernetes
// schemas (kubernetes-models), the ClusterRole grants every request the library makes, and the example
// kubeless-config and registry Secret, stored in the test API server, are what readBuilderConfig reads.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { readBuilderConfig } from '../../lib/kubernetes/config.ts';
import { resolveTarget } from '../../lib/target.ts';
import { startKubeApi } from '../support/kube-api.ts';

const DEPLOY = join(import.meta.dirname, '..', '..', 'deploy');
type Obj = Record<string, any>;

const documents: { file: string; object: Obj }[] = readdirSync(DEPLOY)
  .filter((file) => file.endsWith('.yaml'))
  .sort()
  .flatMap((file) =>
    parseAllDocuments(readFileSync(join(DEPLOY, file), 'utf8')).map((document) => {
      if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0]!.message}`);
      return { file, object: document.toJS() as Obj };
    }),
  );
const ofKind = (kind: string) => documents.filter((d) => d.object.kind === kind).map((d) => d.object);

const MODELS: Record<string, new (data: never) => { validate(): void }> = { ServiceAccount, ClusterRole, ClusterRoleBinding, ConfigMap, Secret };

test('every document in deploy/ is a known kind and validates against the Kubernetes schemas', () => {
  assert.ok(documents.length >= 5, `deploy/ holds ${documents.length} documents`);
  for (const { file, object } of documents) {
    const Model = MODELS[object.kind];
    assert.ok(Model, `${file}: unexpected kind ${object.kind}`);
    new Model!(object as never).validate();
  }
  assert.equal(ofKind('ServiceAccount').length, 1);
  assert.equal(ofKind('ClusterRole').length, 1);
  assert.equal(ofKind('ClusterRoleBinding').length, 1);
});

test('the binding gives the ClusterRole to the ServiceAccount, and the role allows every request the library makes', () => {
  const account = ofKind('ServiceAccount')[0]!;
  const role = ofKind('ClusterRole')[0]!;
  const binding = ofKind('ClusterRoleBinding')[0]!;
  assert.equal(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name });
  assert.equal(binding.subjects, [{ kind: 'ServiceAccount', name: account.metadata.name, namespace: account.metadata.namespace }]);
  // [apiGroup, resource, verb]: readBuilderConfig, scheduleBuild/runBuildJob (lib/kubernetes/jobs.ts), pruneFunctionImages.
  const needed: [string, string, string][] = [
    ['', 'configmaps', 'get'],
    ['', 'secrets', 'get'],
    ['', 'secrets', 'create'],
    ['', 'secrets', 'update'],
    ['batch', 'jobs', 'create'],
    ['batch', 'jobs', 'get'],
    ['batch', 'jobs', 'list'],
    ['batch', 'jobs', 'watch'],
    ['batch', 'jobs', 'delete'],
    ['', 'pods', 'list'],
    ['', 'pods/log', 'get'],
    ['kubeless.io', 'functions', 'list'],
    ['apps', 'deployments', 'list'],
  ];
  const allows = (group: string, resource: string, verb: string) =>
    (role.rules as Obj[]).some((rule) => rule.apiGroups.includes(group) && rule.resources.includes(resource) && rule.verbs.includes(verb));
  for (const [group, resource, verb] of needed) assert.ok(allows(group, resource, verb), `the ClusterRole does not allow ${verb} ${group || 'core'}/${resource}`);
  // Nothing beyond that: no wildcard; Secrets (the build inputs) are written, never listed or deleted;
  // ConfigMaps only read.
  for (const rule of role.rules as Obj[]) {
    assert.not.ok([...rule.verbs, ...rule.resources, ...rule.apiGroups].includes('*'), `wildcard in ${JSON.stringify(rule)}`);
    if (rule.resources.includes('secrets')) assert.equal(rule.verbs, ['get', 'create', 'update']);
    if (rule.resources.includes('configmaps')) assert.equal(rule.verbs, ['get']);
  }
});

test('the example kubeless-config and registry Secret, once stored, are read by readBuilderConfig', async () => {
  const api = await startKubeApi();
  try {
    api.create('configmaps', ofKind('ConfigMap')[0]!);
    api.create('secrets', ofKind('Secret')[0]!);
    const secret = ofKind('Secret')[0]!;
    const config = await readBuilderConfig(api.kubeConfig, { namespace: secret.metadata.namespace });
    assert.ok(config.enabled);
    assert.is(config.builderImage, 'registry.example.com/function-image-builder:0.1.0');
    assert.is(config.registrySecret.type, 'kubernetes.io/dockerconfigjson');
    const target = resolveTarget({ registry: config.registry, dockerConfig: config.registrySecret.dockerConfig, functionName: 'hello' });
    assert.is(target.repository, 'registry.example.com/functions/hello');
    assert.is(config.registrySecret.dockerConfig?.entries[0]?.host, 'registry.example.com', 'the Secret holds credentials for the registry the config pushes to');
  } finally {
    await api.close();
  }
});

test.run();
