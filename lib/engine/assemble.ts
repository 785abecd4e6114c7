// "Assemble" = the function image as data: its manifest, its config, and for every blob the
// descriptor plus where its bytes come from (a registry repository for base layers and reused deps,
// memory for the new layers and the config). Pushing to a registry (copy-blobs.ts) and writing an
// OCI layout or a docker archive are different consumers of the same AssembledImage.
import type { Descriptor } from '../registry/manifest.ts';
import type { BaseImage } from './base.ts';
import { appendConfig, configBytes } from './config.ts';
import type { Layer } from './layer.ts';
import { FAMILY, imageManifest, type SerialisedManifest } from './manifest.ts';
import { sha256Digest } from '../registry/manifest.ts';

export type BlobSource =
  /** Bytes made by this build. */
  | { kind: 'bytes'; data: Buffer }
  /** A blob that already lies in `repository` of `registry` (a base layer, a recorded deps layer). */
  | { kind: 'registry'; registry: string; repository: string };

export interface AssembledBlob {
  descriptor: Descriptor;
  source: BlobSource;
}

export interface AssembledImage {
  /** `os/architecture[/variant]` of this image. */
  platform: string;
  manifest: SerialisedManifest;
  config: AssembledBlob & { source: { kind: 'bytes'; data: Buffer } };
  /** Base layers first, then the appended ones, in the order the manifest lists them. */
  layers: AssembledBlob[];
}

export interface AppendLayer {
  digest: string;
  diffId: string;
  size: number;
  createdBy: string;
  source: BlobSource;
}

/** An AppendLayer for a layer made in memory. */
export function memoryLayer(layer: Layer, createdBy: string): AppendLayer {
  return { digest: layer.digest, diffId: layer.diffId, size: layer.size, createdBy, source: { kind: 'bytes', data: layer.blob } };
}

export interface ImageChanges {
  env: Record<string, string>;
  labels: Record<string, string>;
}

/** The base image with `layers` appended and its config changed as `changes` says. */
export function assembleImage(base: BaseImage, layers: AppendLayer[], changes: ImageChanges): AssembledImage {
  const types = FAMILY[base.family];
  const configJson = appendConfig(base.config, { ...changes, layers: layers.map(({ diffId, createdBy }) => ({ diffId, createdBy })) });
  const data = configBytes(configJson);
  const config = { descriptor: { mediaType: types.config, digest: sha256Digest(data), size: data.length }, source: { kind: 'bytes' as const, data } };
  const from: BlobSource = { kind: 'registry', registry: base.registry, repository: base.repository };
  const all: AssembledBlob[] = [
    ...base.layers.map((descriptor) => ({ descriptor, source: from })),
    ...layers.map((layer) => ({ descriptor: { mediaType: types.layerGzip, digest: layer.digest, size: layer.size }, source: layer.source })),
  ];
  const manifest = imageManifest(base.family, config.descriptor, all.map((blob) => blob.descriptor));
  return { platform: base.platform, manifest, config, layers: all };
}
