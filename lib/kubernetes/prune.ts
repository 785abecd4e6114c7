// pruneFunctionImages(): retention for the images the builder pushed. Kubeless never removed one; a
// function edited daily leaves a new image per edit. Per function repository, every image is kept
// that a Function's current spec or a Deployment references, plus the newest `keep`; the rest is
// deleted by digest, and only on request (the default is a dry run that reports what would go).
//
// A repository `host/ns/<function>` is shared by the same-named Functions of every Kubernetes
// namespace (the registry namespace does not include it), so what is in use is always gathered from
// the whole cluster; `namespace` only narrows which Functions' repositories are pruned.
import { AppsV1Api, CustomObjectsApi, type KubeConfig, type V1Deployment } from '@kubernetes/client-node';
import { BuilderError } from '../errors.ts';
import { parseFunction } from '../function/parse.ts';
import { functionId } from '../function/spec.ts';
import { functionImageTag } from '../image/identity.ts';
import type { ImageDigestResolver } from '../image/plan.ts';
import { parseReference } from '../image/reference.ts';
import { RegistryClient } from '../registry/client.ts';
import { RegistryError } from '../registry/errors.ts';
import { transportFor } from '../registry/transport.ts';
import { pullRepository, resolveTarget } from '../target.ts';
import type { BuilderConfig } from './config.ts';
import { kubernetesError } from './errors.ts';
import { planOptions } from './plan-options.ts';

export const DEFAULT_KEEP = 3;

/** Tags the builder gives its images: the identity hash. Other tags are someone else's and are never touched. */
const BUILDER_TAG = /^[0-9a-f]{64}$/;

export interface PruneOptions {
  /** Prune only the repositories of this namespace's Functions. Default: every namespace's. */
  namespace?: string | undefined;
  /** Images kept per repository beyond those in use, newest first. Default 3. */
  keep?: number | undefined;
  /** true: delete. Default false: a dry run. */
  delete?: boolean | undefined;
  signal?: AbortSignal | undefined;
  log?: ((event: Record<string, unknown>) => void) | undefined;
}

export type KeepReason = 'current' | 'deployed' | 'newest' | 'unknown-age' | 'other-tag';

export interface PrunedImage {
  /** `host/ns/fn@sha256:...` */
  reference: string;
  digest: string;
  tags: string[];
  /** The image config's `created` (ISO 8601), when it could be read. */
  created?: string | undefined;
  /** Why it stays; absent for images that go. */
  kept?: KeepReason[] | undefined;
}

export interface PrunedRepository {
  /** `host/ns/fn`, where the images were pushed. */
  repository: string;
  /** `namespace/name` of the Functions that push here. */
  functions: string[];
  kept: PrunedImage[];
  /** Deleted (or, in a dry run, to be deleted). */
  removed: PrunedImage[];
}

export interface PruneReport {
  dryRun: boolean;
  keep: number;
  repositories: PrunedRepository[];
  /** Functions whose repository was left alone, and why (an invalid spec: its image cannot be known). */
  skipped: { function: string; reason: string }[];
}

interface FunctionImage {
  id: string;
  namespace: string;
  host: string;
  path: string;
  repository: string;
  pullRepository: string;
  tag: string;
}

const FUNCTIONS = { group: 'kubeless.io', version: 'v1beta1', plural: 'functions' };

export async function pruneFunctionImages(kubeConfig: KubeConfig, config: BuilderConfig, options: PruneOptions = {}): Promise<PruneReport> {
  const keep = options.keep ?? DEFAULT_KEEP;
  if (!Number.isInteger(keep) || keep < 0) {
    throw new BuilderError('E_PRUNE_INVALID', 'user', `prune: keep must be a whole number of images, 0 or more, not ${keep}`, { details: { keep } });
  }
  const log = options.log ?? (() => {});
  const dockerConfig = config.registrySecret.dockerConfig;
  const resolveOptions = planOptions(config, options.signal, log);
  // One lookup per runtime image for the whole run, not one per Function: a cluster's Functions
  // share a few runtimes, and every tag of one run is computed against the same digests.
  const resolveImageDigest = memoized(resolveOptions.resolveImageDigest);

  const [functionObjects, deployments] = await Promise.all([listFunctions(kubeConfig), listDeployments(kubeConfig)]);
  const images: FunctionImage[] = [];
  const skipped: PruneReport['skipped'] = [];
  const unknownRepositories = new Set<string>();
  for (const object of functionObjects) {
    const meta = (object as { metadata?: { namespace?: string; name?: string } }).metadata ?? {};
    const id = `${meta.namespace ?? '?'}/${meta.name ?? '?'}`;
    try {
      const spec = parseFunction(object);
      if (spec.prebuiltImage) continue;
      const target = resolveTarget({ registry: config.registry, dockerConfig, functionName: spec.name });
      const tag = await functionImageTag(spec, { ...resolveOptions, resolveImageDigest });
      images.push({
        id: functionId(spec),
        namespace: spec.namespace,
        host: target.host,
        path: target.path,
        repository: target.repository,
        pullRepository: pullRepository(target, config.pullRegistry),
        tag,
      });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      // Its current image cannot be known, so nothing in its repository may go.
      const reason = error instanceof Error ? error.message : String(error);
      skipped.push({ function: id, reason });
      if (meta.name !== undefined) {
        try {
          unknownRepositories.add(resolveTarget({ registry: config.registry, dockerConfig, functionName: meta.name }).repository);
        } catch {
          // no valid repository name: nothing of it can be in the registry either
        }
      }
      log({ event: 'prune-skip', level: 'warn', function: id, reason });
    }
  }

  const deployed = deployedImages(deployments);
  const repositories: PrunedRepository[] = [];
  const inScope = images.filter((image) => options.namespace === undefined || image.namespace === options.namespace);
  for (const repository of [...new Set(inScope.map((image) => image.repository))].sort()) {
    if (unknownRepositories.has(repository)) continue;
    const users = images.filter((image) => image.repository === repository);
    const first = users[0]!;
    const client = new RegistryClient({ registry: first.host, credentials: dockerConfig, transport: transportFor(config.registries, first.host), signal: options.signal, log: (event) => log(event) });
    const names = new Set([repository, ...users.map((image) => image.pullRepository)]);
    const inUse = { tags: new Set(users.map((image) => image.tag)), deployedTags: new Set<string>(), deployedDigests: new Set<string>() };
    for (const ref of deployed) {
      if (!names.has(ref.name)) continue;
      if (ref.digest) inUse.deployedDigests.add(ref.digest);
      if (ref.tag) inUse.deployedTags.add(ref.tag);
    }
    log({ event: 'prune-repository', level: 'info', repository, functions: users.map((image) => image.id) });
    const result = await pruneRepository(client, repository, first.path, inUse, keep, options.delete === true, log);
    repositories.push({ repository, functions: users.map((image) => image.id).sort(), ...result });
  }
  return { dryRun: options.delete !== true, keep, repositories, skipped };
}

async function pruneRepository(
  client: RegistryClient,
  repository: string,
  path: string,
  inUse: { tags: Set<string>; deployedTags: Set<string>; deployedDigests: Set<string> },
  keep: number,
  remove: boolean,
  log: (event: Record<string, unknown>) => void,
): Promise<{ kept: PrunedImage[]; removed: PrunedImage[] }> {
  const tags = await client.listTags(path).catch((error: unknown) => {
    // A Function whose image was never pushed has no repository yet.
    if (error instanceof RegistryError && error.code === 'E_REGISTRY_NOT_FOUND') return [];
    throw error;
  });
  // Deleting by digest removes every tag of it, so images are grouped by digest. One GET per tag
  // gives both the digest and the manifest the creation time is read from.
  const byDigest = new Map<string, PrunedImage>();
  const manifests = new Map<string, Record<string, unknown>>();
  for (const tag of tags.sort()) {
    const found = await client.getManifest(path, tag).catch((error: unknown) => {
      // Deleted since the tags were listed.
      if (error instanceof RegistryError && error.code === 'E_REGISTRY_NOT_FOUND') return undefined;
      throw error;
    });
    if (!found) continue;
    const image = byDigest.get(found.digest) ?? { reference: `${repository}@${found.digest}`, digest: found.digest, tags: [] };
    image.tags.push(tag);
    byDigest.set(found.digest, image);
    manifests.set(found.digest, found.json);
  }
  const images = [...byDigest.values()];
  for (const image of images) {
    image.created = await createdOf(client, path, manifests.get(image.digest)!);
    const reasons: KeepReason[] = [];
    if (image.tags.some((tag) => inUse.tags.has(tag))) reasons.push('current');
    if (inUse.deployedDigests.has(image.digest) || image.tags.some((tag) => inUse.deployedTags.has(tag))) reasons.push('deployed');
    if (image.tags.some((tag) => !BUILDER_TAG.test(tag))) reasons.push('other-tag');
    if (image.created === undefined) reasons.push('unknown-age');
    if (reasons.length > 0) image.kept = reasons;
  }
  // Newest first by the image config's creation time (the build's time); the digest breaks ties so
  // the order is the same on every run.
  const dated = images.filter((image) => image.created !== undefined).sort((a, b) => b.created!.localeCompare(a.created!) || a.digest.localeCompare(b.digest));
  for (const image of dated.slice(0, keep)) image.kept = [...(image.kept ?? []), 'newest'];
  const removed = images.filter((image) => image.kept === undefined);
  for (const image of removed) {
    log({ event: remove ? 'prune-delete' : 'prune-would-delete', level: 'info', reference: image.reference, tags: image.tags, created: image.created });
    if (remove) await client.deleteManifest(path, image.digest);
  }
  return { kept: images.filter((image) => image.kept !== undefined), removed };
}

/** The image config's `created`, or undefined for an index or a config without it. */
async function createdOf(client: RegistryClient, path: string, manifest: Record<string, unknown>): Promise<string | undefined> {
  const configDigest = (manifest.config as { digest?: unknown } | undefined)?.digest;
  if (typeof configDigest !== 'string') return undefined;
  const config = JSON.parse((await client.getBlob(path, configDigest, { maxBytes: 4 * 1024 * 1024 })).toString('utf8')) as { created?: unknown };
  if (typeof config.created !== 'string' || Number.isNaN(Date.parse(config.created))) return undefined;
  return new Date(config.created).toISOString();
}

async function listFunctions(kubeConfig: KubeConfig): Promise<object[]> {
  const api = kubeConfig.makeApiClient(CustomObjectsApi);
  const items: object[] = [];
  let next: string | undefined;
  do {
    let page: { items?: object[]; metadata?: { continue?: string } };
    try {
      page = (await api.listClusterCustomObject({ ...FUNCTIONS, limit: 500, ...(next ? { _continue: next } : {}) })) as typeof page;
    } catch (error) {
      throw kubernetesError(error, 'list Functions (kubeless.io/v1beta1) in all namespaces', { notFound: 'the Function resource is not installed: install Kubeless (its CRD functions.kubeless.io)' });
    }
    items.push(...(page.items ?? []).map((item) => ({ apiVersion: 'kubeless.io/v1beta1', kind: 'Function', ...item })));
    next = page.metadata?.continue || undefined;
  } while (next);
  return items;
}

async function listDeployments(kubeConfig: KubeConfig): Promise<V1Deployment[]> {
  const api = kubeConfig.makeApiClient(AppsV1Api);
  const items: V1Deployment[] = [];
  let next: string | undefined;
  do {
    try {
      const page = await api.listDeploymentForAllNamespaces({ limit: 500, ...(next ? { _continue: next } : {}) });
      items.push(...page.items);
      next = page.metadata?._continue || undefined;
    } catch (error) {
      throw kubernetesError(error, 'list Deployments in all namespaces');
    }
  } while (next);
  return items;
}

/** Every container and init container image of the Deployments, parsed; unparseable names are not ours. */
function deployedImages(deployments: V1Deployment[]): { name: string; tag?: string | undefined; digest?: string | undefined }[] {
  const found = [];
  for (const deployment of deployments) {
    const pod = deployment.spec?.template.spec;
    for (const container of [...(pod?.containers ?? []), ...(pod?.initContainers ?? [])]) {
      if (!container.image) continue;
      try {
        const ref = parseReference(container.image);
        found.push({ name: ref.name, tag: ref.tag, digest: ref.digest });
      } catch {
        // not a valid reference: it cannot name one of our images
      }
    }
  }
  return found;
}

function memoized(resolve: ImageDigestResolver): ImageDigestResolver {
  const answers = new Map<string, Promise<string>>();
  return (image) => {
    let answer = answers.get(image);
    if (answer === undefined) {
      answer = resolve(image);
      answers.set(image, answer);
      // A failed lookup is asked again for the next Function, as before.
      answer.catch(() => answers.delete(image));
    }
    return answer;
  };
}
