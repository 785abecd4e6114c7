// Small images pushed straight through the registry API (no Docker Engine): for tests that need a
// repository's tags to exist — retention, cached checks — rather than an image that runs; and a
// runtime catalog pinned by digest, so that computing those tests' tags asks no registry.
import type { RegistryClient } from '../../lib/registry/client.ts';
import { sha256Digest } from '../../lib/registry/manifest.ts';

/**
 * Pushes a one-layer image under every tag in `tags` and returns its digest. The layer names the
 * path and tags, so distinct calls give distinct images; `created` goes into the image config.
 */
export async function pushSmallImage(client: RegistryClient, path: string, tags: string[], options: { created?: string } = {}): Promise<string> {
  const layer = Buffer.from(`layer of ${path}:${tags.join(',')}`);
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      ...(options.created === undefined ? {} : { created: options.created }),
      rootfs: { type: 'layers', diff_ids: [sha256Digest(layer)] },
    }),
  );
  const layerBlob = await client.pushBlob(path, layer);
  const configBlob = await client.pushBlob(path, config);
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: configBlob.digest },
    layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', size: layer.length, digest: layerBlob.digest }],
  };
  let digest = '';
  for (const tag of tags) digest = (await client.putManifest(path, tag, manifest)).digest;
  return digest;
}

/** runtime-images JSON with one nodejs24 runtime pinned by digest (an image nothing ever pulls). */
export const PINNED_CATALOG_JSON = JSON.stringify([
  {
    ID: 'nodejs',
    depName: 'package.json',
    fileNameSuffix: '.js',
    versions: [{ name: 'node24', version: '24', images: [{ phase: 'runtime', image: `127.0.0.1:9/runtimes/node@sha256:${'a'.repeat(64)}` }] }],
  },
]);
