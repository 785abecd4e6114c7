// Writes an image as an OCI image layout (image-layout spec 1.0): `oci-layout`, `index.json` naming
// the one manifest, and every blob under blobs/<algorithm>/<hex>. skopeo (oci:DIR), umoci, containerd
// (`ctr import`) and podman read it. The same image gives the same files, byte for byte.
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MEDIA_TYPE, sha256Digest, type Descriptor } from '../registry/manifest.ts';
import { ociManifestBytes, readManifest, verifiedChunks, type LocalImage } from './local-image.ts';

/** Annotation the OCI spec gives for an image's name in a layout: here the function's tag. */
const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
/** The full name containerd's `ctr import` tags the image with. */
const CONTAINERD_NAME_ANNOTATION = 'io.containerd.image.name';

export interface WrittenImage {
  /** Digest of the manifest as written (an OCI layout holds the OCI form of a Docker manifest). */
  manifestDigest: string;
  /** The config's digest: the image ID `docker load` reports. */
  configDigest: string;
}

/** Writes the layout into `dir`, which must be empty or missing. */
export async function writeOciLayout(dir: string, image: LocalImage): Promise<WrittenImage> {
  const manifest = readManifest(image);
  const manifestBytes = ociManifestBytes(manifest, image.manifest);
  const manifestDigest = sha256Digest(manifestBytes);
  const blobPath = (digest: string) => join(dir, 'blobs', ...digest.split(':'));
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });

  const written = new Set<string>();
  for (const layer of manifest.layers) {
    if (written.has(layer.digest)) continue;
    written.add(layer.digest);
    await mkdir(join(blobPath(layer.digest), '..'), { recursive: true });
    await pipeline(Readable.from(verifiedChunks(layer, image.layer(layer), `the layers of ${image.name}`)), createWriteStream(blobPath(layer.digest), { flags: 'wx' }));
  }
  await writeFile(blobPath(manifest.config.digest), image.config, { flag: written.has(manifest.config.digest) ? 'w' : 'wx' });
  await writeFile(blobPath(manifestDigest), manifestBytes);

  const tag = image.name.slice(image.name.lastIndexOf(':') + 1);
  const entry: Descriptor = {
    mediaType: MEDIA_TYPE.ociManifest,
    digest: manifestDigest,
    size: manifestBytes.length,
    annotations: { [CONTAINERD_NAME_ANNOTATION]: image.name, [REF_NAME_ANNOTATION]: tag },
  };
  const index = { schemaVersion: 2, mediaType: MEDIA_TYPE.ociIndex, manifests: [entry] };
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
  // Written last: a directory with `oci-layout` is a complete layout.
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  return { manifestDigest, configDigest: manifest.config.digest };
}
