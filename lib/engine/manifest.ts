// Image manifests in the base image's media-type family: a Docker schema 2 base gives a Docker
// schema 2 image, an OCI base an OCI image, so every tool that could read the base reads the result.
import { MEDIA_TYPE, sha256Digest, type Descriptor } from '../registry/manifest.ts';

export type ManifestFamily = 'docker' | 'oci';

export interface FamilyTypes {
  manifest: string;
  config: string;
  layerGzip: string;
  index: string;
}

export const FAMILY: Record<ManifestFamily, FamilyTypes> = {
  docker: { manifest: MEDIA_TYPE.dockerManifest, config: MEDIA_TYPE.dockerConfig, layerGzip: MEDIA_TYPE.dockerLayerGzip, index: MEDIA_TYPE.dockerManifestList },
  oci: { manifest: MEDIA_TYPE.ociManifest, config: MEDIA_TYPE.ociConfig, layerGzip: MEDIA_TYPE.ociLayerGzip, index: MEDIA_TYPE.ociIndex },
};

/** The family of a manifest or index media type; undefined for anything else (schema 1, artifacts). */
export function familyOf(mediaType: string): ManifestFamily | undefined {
  if (mediaType === MEDIA_TYPE.dockerManifest || mediaType === MEDIA_TYPE.dockerManifestList) return 'docker';
  if (mediaType === MEDIA_TYPE.ociManifest || mediaType === MEDIA_TYPE.ociIndex) return 'oci';
  return undefined;
}

export interface SerialisedManifest {
  mediaType: string;
  bytes: Buffer;
  digest: string;
}

function serialise(mediaType: string, body: Record<string, unknown>): SerialisedManifest {
  const bytes = Buffer.from(JSON.stringify(body));
  return { mediaType, bytes, digest: sha256Digest(bytes) };
}

/** An image manifest: config and layers as descriptors (mediaType, digest, size), in layer order. */
export function imageManifest(family: ManifestFamily, config: Descriptor, layers: Descriptor[]): SerialisedManifest {
  const mediaType = FAMILY[family].manifest;
  const plain = (d: Descriptor): Descriptor => ({ mediaType: d.mediaType, digest: d.digest, size: d.size, ...(d.annotations ? { annotations: d.annotations } : {}) });
  return serialise(mediaType, { schemaVersion: 2, mediaType, config: plain(config), layers: layers.map(plain) });
}

/** An index / manifest list of image manifests, each with its platform. */
export function imageIndex(family: ManifestFamily, manifests: Descriptor[]): SerialisedManifest {
  const mediaType = FAMILY[family].index;
  return serialise(mediaType, { schemaVersion: 2, mediaType, manifests });
}
