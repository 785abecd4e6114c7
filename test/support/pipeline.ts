// The rig of the build-pipeline tests: the runtime images in a private (Basic auth) registry,
// wrapped per test file in images carrying a label unique to that file, so every image the file's
// builds make in the shared Docker Engine — deps-stage cache, intermediates, pulled results —
// inherits it and is removed at the end (imageScope); target registries of every kind; a file
// server for url sources; and a way to pull a built image back and call the function over HTTP.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { docker, exec } from './docker.ts';
import { imageScope, type ImageScope } from './engine-images.ts';
import { callFunctionImage } from './function-container.ts';
import { dockerClientConfig, startRegistry, type RegistryHandle, type RegistryKind } from './registry.ts';
import { releaseRuntimeImages, runtimeCatalogFor, type RuntimeCatalogEntry } from './runtime-images.ts';
import { TEST_LABEL } from './docker.ts';

/**
 * The download option that lets a build fetch url sources from the rig's file servers: url sources
 * on loopback or private addresses are refused by default, so every test that serves one opts in,
 * for loopback only.
 */
export const LOOPBACK_SOURCES = { allowPrivateAddresses: ['127.0.0.0/8'] };

export interface FileServer {
  /** http://127.0.0.1:port/<path> after put(path, bytes). */
  put(path: string, content: string | Buffer): string;
  /** How often each path was requested. */
  hits: Map<string, number>;
  stop(): Promise<void>;
}

export async function startFileServer(): Promise<FileServer> {
  const files = new Map<string, Buffer>();
  const hits = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const body = files.get(path);
    res.writeHead(body ? 200 : 404, { 'content-type': 'application/octet-stream' });
    res.end(body ?? 'not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    put(path, content) {
      const key = path.startsWith('/') ? path : `/${path}`;
      files.set(key, Buffer.from(content));
      return `${base}${key}`;
    },
    hits,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface PipelineRig {
  scope: ImageScope;
  /** Basic-auth registry holding the (wrapped) runtime images. */
  source: RegistryHandle;
  targets: Partial<Record<RegistryKind, RegistryHandle>>;
  /** Runtime catalog whose images are the labelled wrappers: runtime phase by tag, installation by digest. */
  catalog: RuntimeCatalogEntry[];
  /**
   * .dockerconfigjson text with the source registry's credentials (the basic target's too, being the
   * source). A token target's credentials are not in it: they are in that target's dockerConfigJson.
   */
  dockerConfigJson: string;
  /** Transport settings: the TLS target's CA. */
  registries: Record<string, { ca?: string; tlsVerify?: boolean; insecure?: boolean }>;
  files: FileServer;
  stop(): Promise<void>;
}

/**
 * Starts the source registry and the `targets` (a 'basic' target is the source itself, so base and
 * target share credentials there and differ elsewhere), pushes the runtime images and wraps them.
 */
export async function startPipelineRig(name: string, targetKinds: RegistryKind[] = ['anonymous']): Promise<PipelineRig> {
  const scope = imageScope(name);
  const started: RegistryHandle[] = [];
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const fn of stops.splice(0).reverse()) await fn().catch(() => undefined);
  };
  try {
    const source = await startRegistry('basic');
    started.push(source);
    stops.push(() => source.stop());
    stops.push(() => scope.cleanup());
    stops.push(() => releaseRuntimeImages(source));
    const targets: Partial<Record<RegistryKind, RegistryHandle>> = {};
    for (const kind of targetKinds) {
      if (kind === 'basic') {
        targets.basic = source;
        continue;
      }
      const target = await startRegistry(kind);
      started.push(target);
      stops.push(() => target.stop());
      targets[kind] = target;
    }
    const files = await startFileServer();
    stops.push(() => files.stop());
    const catalog = await wrapCatalog(await runtimeCatalogFor(source), source, scope);
    const auths: Record<string, { username: string; password: string; auth: string }> = {};
    for (const registry of started) {
      if (registry.username && registry.password && registry.kind === 'basic') {
        auths[registry.host] = { username: registry.username, password: registry.password, auth: Buffer.from(`${registry.username}:${registry.password}`).toString('base64') };
      }
    }
    const registries: PipelineRig['registries'] = {};
    if (targets.tls?.caPem) registries[targets.tls.host] = { ca: targets.tls.caPem };
    return { scope, source, targets, catalog, dockerConfigJson: JSON.stringify({ auths }), registries, files, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * FROM each catalog image + LABEL TEST_LABEL=<scope>, pushed to <source>/<namespace>/<image>
 * (namespace fib-<scope> unless given). `forget`: every local reference to the new images (tag and
 * repo@digest) is removed after the push, so that a build can only get them by pulling.
 */
async function wrapCatalog(
  catalog: RuntimeCatalogEntry[],
  source: RegistryHandle,
  scope: ImageScope,
  { namespace = `fib-${scope.value}`, forget = false }: { namespace?: string; forget?: boolean } = {},
): Promise<RuntimeCatalogEntry[]> {
  const config = dockerClientConfig(source);
  try {
    for (const runtime of catalog) {
      for (const version of runtime.versions) {
        for (const phase of version.images) {
          // The last path segment: nodejs-install of <host>/kubeless/nodejs-install@... or <host>/fib-x/nodejs-install:24.
          const imageName = /\/([^/@:]+)(?:[:@][^/]*)?$/.exec(phase.image)?.[1] ?? phase.phase;
          const repository = `${source.host}/${namespace}/${imageName}`;
          const tagged = `${repository}:${version.version}`;
          const built = await exec('docker', ['--config', config.dir, 'build', '-q', '-t', tagged, '-'], {
            // A forgotten re-wrap gets a label of its own, so it is a new image rather than a build-cache hit.
            input: `FROM ${phase.image}\nLABEL ${TEST_LABEL}=${scope.value}${forget ? ` ${TEST_LABEL}.namespace=${namespace}` : ''}\n`,
            env: { ...process.env, DOCKER_BUILDKIT: '0' },
            timeoutMs: 300_000,
          });
          if (built.code !== 0) throw new Error(`wrapping ${phase.image} failed: ${built.stderr}`);
          const pushed = await docker(['--config', config.dir, 'push', tagged]);
          const digest = /digest: (sha256:[0-9a-f]{64})/.exec(pushed)?.[1];
          if (!digest) throw new Error(`docker push ${tagged} printed no digest`);
          if (forget) {
            // Removing the last tag may take the repo@digest reference with it, or leave it behind.
            await docker(['rmi', tagged]);
            await exec('docker', ['rmi', `${repository}@${digest}`]);
            if (await hasLocalImage(`${repository}@${digest}`)) throw new Error(`${repository}@${digest} is still in the daemon`);
          }
          // The runtime image by its moving tag (the builder pins it), the installation image by digest.
          phase.image = phase.phase === 'runtime' ? tagged : `${repository}@${digest}`;
        }
      }
    }
  } finally {
    config.cleanup();
  }
  return catalog;
}

/**
 * The rig's catalog wrapped once more, under <source>/fib-<scope>-remote/, and gone from the daemon:
 * a build with it has to pull every base image from the source registry, with its credentials.
 * The pulled images carry the scope's label, so the rig's cleanup removes them.
 */
export function remoteOnlyCatalog(rig: PipelineRig): Promise<RuntimeCatalogEntry[]> {
  return wrapCatalog(structuredClone(rig.catalog), rig.source, rig.scope, { namespace: `fib-${rig.scope.value}-remote`, forget: true });
}

/** A Kubeless Function object. */
export function functionObject(name: string, spec: Record<string, unknown>, env: Record<string, string> = {}): Record<string, unknown> {
  const full: Record<string, unknown> = { ...spec };
  if (Object.keys(env).length > 0) {
    full.deployment = { spec: { template: { spec: { containers: [{ env: Object.entries(env).map(([n, value]) => ({ name: n, value })) }] } } } };
  }
  return { apiVersion: 'kubeless.io/v1beta1', kind: 'Function', metadata: { name, namespace: 'default' }, spec: full };
}

/** Whether the local daemon has an image by that name. */
export async function hasLocalImage(image: string): Promise<boolean> {
  return (await exec('docker', ['image', 'inspect', image])).code === 0;
}

/**
 * Pulls `reference` from its registry (with `registry`'s credentials when it has any), runs it as a
 * function container, sends `body` and returns the answer; the container and the pulled image go.
 */
export async function callBuiltFunction(reference: string, registry: RegistryHandle | undefined, body: string, contentType = 'text/plain'): Promise<{ status: number; text: string }> {
  // basic: the htpasswd user; token: the user the token server grants everything.
  const config = registry?.username && registry.password ? dockerClientConfig(registry) : undefined;
  try {
    await docker([...(config ? ['--config', config.dir] : []), 'pull', '-q', reference]);
  } finally {
    config?.cleanup();
  }
  try {
    return await callFunctionImage(reference, body, contentType);
  } finally {
    await exec('docker', ['rmi', reference]);
  }
}

/** Tags of a repository in a registry ([] when the repository does not exist). */
export async function registryTags(registry: RegistryHandle, repository: string): Promise<string[]> {
  const headers: Record<string, string> = {};
  if (registry.username && registry.password && registry.kind === 'basic') {
    headers.authorization = `Basic ${Buffer.from(`${registry.username}:${registry.password}`).toString('base64')}`;
  }
  const { request } = await import('undici');
  const { Agent } = await import('undici');
  const dispatcher = registry.caPem ? new Agent({ connect: { ca: registry.caPem } }) : undefined;
  try {
    const response = await request(`${registry.url}/v2/${repository}/tags/list`, { headers, ...(dispatcher ? { dispatcher } : {}) });
    const text = await response.body.text();
    if (response.statusCode === 404) return [];
    if (response.statusCode !== 200) throw new Error(`tags/list of ${repository}: HTTP ${response.statusCode} ${text}`);
    return (JSON.parse(text) as { tags: string[] | null }).tags ?? [];
  } finally {
    await dispatcher?.close();
  }
}

/** Containers (any state) carrying the scope's label: build steps inherit it from the wrapped images. */
export async function scopeContainers(scope: ImageScope): Promise<string[]> {
  return (await docker(['ps', '-a', '-q', '--filter', `label=${scope.label}`])).split('\n').filter(Boolean);
}
