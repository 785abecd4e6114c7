// An assembled image as the output writers take it: the manifest and config bytes exactly as a
// registry would hold them, and a way to read each layer's bytes (new layers from memory, base layers
// from the blob cache). The writers check every layer against its digest as they copy it.
import { createHash } from 'node:crypto';
import { BuilderError } from '../errors.ts';
import { MEDIA_TYPE, sha256Digest, type Descriptor } from '../registry/manifest.ts';

export interface LocalImage {
  /** `host/ns/fn:tag`: the archive's RepoTags, the layout's image name. */
  name: string;
  /** The manifest as pushed (Docker schema 2 or OCI), its bytes decide its digest. */
  manifest: Buffer;
  config: Buffer;
  /** The bytes of one of the manifest's layers. */
  layer(descriptor: Descriptor): AsyncIterable<Uint8Array>;
}

export interface ImageManifest {
  schemaVersion: number;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

/** A layer or config whose bytes do not match the digest the manifest gives. */
export class ImageContentError extends BuilderError {
  constructor(message: string, details: Record<string, unknown>) {
    super('E_IMAGE_CONTENT', 'infrastructure', message, { details });
  }
}

/** The manifest of a LocalImage, checked for what the writers rely on. */
export function readManifest(image: Pick<LocalImage, 'manifest' | 'config' | 'name'>): ImageManifest {
  const json = JSON.parse(image.manifest.toString('utf8')) as Partial<ImageManifest>;
  const mediaType = json.mediaType;
  if (json.schemaVersion !== 2 || (mediaType !== MEDIA_TYPE.dockerManifest && mediaType !== MEDIA_TYPE.ociManifest) || !json.config || !Array.isArray(json.layers)) {
    throw new TypeError(`${image.name}: the manifest must be a single-platform Docker schema 2 or OCI image manifest (mediaType ${String(mediaType)})`);
  }
  const configDigest = sha256Digest(image.config);
  if (json.config.digest !== configDigest || json.config.size !== image.config.length) {
    throw new ImageContentError(`${image.name}: the config is ${image.config.length} bytes hashing to ${configDigest}; the manifest names ${json.config.digest} (${json.config.size} bytes)`, {
      image: image.name,
    });
  }
  return json as ImageManifest;
}

/** Docker schema 2 media types and their OCI equivalents (the blobs' bytes are the same). */
const OCI_EQUIVALENT: Record<string, string> = {
  [MEDIA_TYPE.dockerManifest]: MEDIA_TYPE.ociManifest,
  [MEDIA_TYPE.dockerConfig]: MEDIA_TYPE.ociConfig,
  [MEDIA_TYPE.dockerLayerGzip]: MEDIA_TYPE.ociLayerGzip,
  'application/vnd.docker.image.rootfs.diff.tar': 'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
};

/**
 * The manifest bytes an OCI layout holds: an OCI manifest as it is (its digest kept); a Docker one
 * rewritten with the OCI media types, as `skopeo copy --format oci` does, since OCI tools such as umoci
 * accept only those. Same input, same bytes.
 */
export function ociManifestBytes(manifest: ImageManifest, original: Buffer): Buffer {
  if (manifest.mediaType === MEDIA_TYPE.ociManifest) return original;
  const descriptor = (d: Descriptor): Descriptor => ({
    mediaType: OCI_EQUIVALENT[d.mediaType] ?? d.mediaType,
    digest: d.digest,
    size: d.size,
    ...(d.annotations ? { annotations: d.annotations } : {}),
  });
  const converted: ImageManifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.ociManifest,
    config: descriptor(manifest.config),
    layers: manifest.layers.map(descriptor),
    ...(manifest.annotations ? { annotations: manifest.annotations } : {}),
  };
  return Buffer.from(JSON.stringify(converted));
}

/** `chunks`, hashed and counted on the way: the last read throws ImageContentError when they are not `descriptor`'s bytes. */
export async function* verifiedChunks(descriptor: Descriptor, chunks: AsyncIterable<Uint8Array>, where: string): AsyncGenerator<Uint8Array> {
  const [algorithm] = descriptor.digest.split(':') as [string];
  const hash = createHash(algorithm);
  let size = 0;
  for await (const chunk of chunks) {
    hash.update(chunk);
    size += chunk.length;
    yield chunk;
  }
  const computed = `${algorithm}:${hash.digest('hex')}`;
  if (computed !== descriptor.digest || size !== descriptor.size) {
    throw new ImageContentError(`layer ${descriptor.digest} (${descriptor.size} bytes) read from ${where} is ${size} bytes hashing to ${computed}`, {
      digest: descriptor.digest,
      computed,
      where,
    });
  }
}
