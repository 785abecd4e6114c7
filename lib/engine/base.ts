// Reads the runtime (base) image by digest: its manifest and config, never its layers. An index
// (manifest list / OCI index) gives one BaseImage per platform asked for.
import { BuilderError } from '../errors.ts';
import { parseReference } from '../image/reference.ts';
import type { Manifest, RegistryClient } from '../registry/client.ts';
import { formatPlatform, isIndexMediaType, listPlatforms, selectPlatform, type Descriptor, type ManifestIndex, type Platform } from '../registry/manifest.ts';
import { familyOf, type ManifestFamily } from './manifest.ts';

export interface BaseImage {
  /** Registry host and repository the base's blobs are read from (and mounted from). */
  registry: string;
  repository: string;
  /** Digest of the image manifest (the platform's entry when the reference names an index). */
  digest: string;
  family: ManifestFamily;
  /** The manifest's exact bytes, to copy the base into another registry under the same digest. */
  manifest: { bytes: Buffer; mediaType: string };
  platform: string;
  config: Record<string, unknown>;
  configDescriptor: Descriptor;
  layers: Descriptor[];
}

export interface BaseImages {
  /** Set when the reference names an index: its family and every platform it lists. */
  index?: { family: ManifestFamily; platforms: string[] };
  images: BaseImage[];
}

export class BaseManifestError extends BuilderError {
  constructor(message: string, details: Record<string, unknown>) {
    super('E_BASE_IMAGE_UNSUPPORTED', 'user', message, { details });
  }
}

const CONFIG_MAX_BYTES = 8 * 1024 * 1024;
/** Base images read by digest: content-addressed, so an entry can never go stale. Bounded, oldest out first. */
const cache = new Map<string, BaseImages>();
const CACHE_ENTRIES = 64;

/**
 * `image` is "host/repo@sha256:...". `platforms`: which entries of an index to read (by default only
 * `platform`); a plain image manifest is read whatever its platform, as the Docker engine would.
 */
export async function readBaseImages(client: RegistryClient, image: string, platform: string, platforms?: string[] | 'all'): Promise<BaseImages> {
  const ref = parseReference(image);
  const key = ref.digest === undefined ? undefined : `${image} ${platform} ${JSON.stringify(platforms ?? null)}`;
  const cached = key === undefined ? undefined : cache.get(key);
  if (cached) return cached;
  const read = await readUncached(client, image, platform, platforms);
  if (key !== undefined) {
    cache.set(key, read);
    if (cache.size > CACHE_ENTRIES) cache.delete(cache.keys().next().value as string);
  }
  return read;
}

async function readUncached(client: RegistryClient, image: string, platform: string, platforms?: string[] | 'all'): Promise<BaseImages> {
  const ref = parseReference(image);
  const reference = ref.digest ?? ref.tag ?? 'latest';
  const top = await client.getManifest(ref.repository, reference);
  if (!isIndexMediaType(top.mediaType)) return { images: [await readImage(client, ref.registry, ref.repository, top)] };

  const index = top.json as unknown as ManifestIndex;
  const family = familyOf(top.mediaType) as ManifestFamily;
  const offered = listPlatforms(index);
  const wanted = platforms === 'all' ? offered : (platforms ?? [platform]);
  const images: BaseImage[] = [];
  for (const name of wanted) {
    const entry = selectPlatform(index, name);
    if (entry === undefined) {
      throw new BaseManifestError(`runtime image ${image} has no image for ${name} (it has: ${offered.join(', ') || 'none'}); choose one of those platforms`, { image, platform: name, available: offered });
    }
    const manifest = await client.getManifest(ref.repository, entry.digest);
    images.push(await readImage(client, ref.registry, ref.repository, manifest, formatPlatform(entry.platform as Platform)));
  }
  return { index: { family, platforms: offered }, images };
}

async function readImage(client: RegistryClient, registry: string, repository: string, manifest: Manifest, platform?: string): Promise<BaseImage> {
  const { digest, mediaType, json } = manifest;
  const family = familyOf(mediaType);
  const config = json.config as Descriptor | undefined;
  const layers = json.layers as Descriptor[] | undefined;
  if (family === undefined || config === undefined || !Array.isArray(layers)) {
    throw new BaseManifestError(`runtime image ${registry}/${repository}@${digest} has a ${mediaType || 'unknown'} manifest; the registry engine appends only to Docker schema 2 or OCI images (use --engine docker)`, {
      image: `${registry}/${repository}@${digest}`,
      mediaType,
    });
  }
  const configJson = JSON.parse((await client.getBlob(repository, config.digest, { maxBytes: CONFIG_MAX_BYTES })).toString('utf8')) as Record<string, unknown>;
  // A plain manifest says its platform only in its config.
  const own = typeof configJson.os === 'string' && typeof configJson.architecture === 'string'
    ? formatPlatform({ os: configJson.os, architecture: configJson.architecture, variant: typeof configJson.variant === 'string' ? configJson.variant : undefined })
    : 'unknown';
  return { registry, repository, digest, family, manifest: { bytes: manifest.bytes, mediaType }, platform: platform ?? own, config: configJson, configDescriptor: config, layers };
}
