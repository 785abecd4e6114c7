// Manifest media types and platform selection from an image index (OCI) or manifest list (Docker).
import { createHash } from 'node:crypto';

export const MEDIA_TYPE = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

/** Everything we can read, so the registry never falls back to converting to schema 1. */
export const MANIFEST_ACCEPT = [MEDIA_TYPE.ociIndex, MEDIA_TYPE.dockerManifestList, MEDIA_TYPE.ociManifest, MEDIA_TYPE.dockerManifest].join(', ');

export function isIndexMediaType(mediaType: string | undefined): boolean {
  return mediaType === MEDIA_TYPE.ociIndex || mediaType === MEDIA_TYPE.dockerManifestList;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string | undefined;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform & { 'os.version'?: string };
  annotations?: Record<string, string>;
}

export interface ManifestIndex {
  schemaVersion: number;
  mediaType?: string;
  manifests: Descriptor[];
}

/** "linux/arm64/v8" → { os, architecture, variant }. */
export function parsePlatform(platform: string | Platform): Platform {
  if (typeof platform !== 'string') return platform;
  const [os, architecture, variant] = platform.split('/');
  if (!os || !architecture) throw new TypeError(`platform ${JSON.stringify(platform)} must be os/architecture[/variant], e.g. linux/amd64`);
  return { os, architecture, variant };
}

export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
}

/** Variants a platform implies when none is given (as containerd normalises them). */
function defaultVariant(architecture: string): string | undefined {
  if (architecture === 'arm64') return 'v8';
  if (architecture === 'arm') return 'v7';
  return undefined;
}

/**
 * The descriptor of the manifest for `platform` in an index, or undefined. Attestation and other
 * entries without a real platform are skipped; a missing variant matches the architecture's default.
 */
export function selectPlatform(index: ManifestIndex, platform: string | Platform): Descriptor | undefined {
  const wanted = parsePlatform(platform);
  const wantedVariant = wanted.variant ?? defaultVariant(wanted.architecture);
  const candidates = index.manifests.filter(
    (m) => m.platform && m.platform.os === wanted.os && m.platform.architecture === wanted.architecture && m.annotations?.['vnd.docker.reference.type'] === undefined,
  );
  return (
    candidates.find((m) => (m.platform?.variant ?? defaultVariant(wanted.architecture)) === wantedVariant) ??
    (wanted.variant === undefined ? candidates[0] : undefined)
  );
}

/** Platforms an index offers, for "not found" messages. */
export function listPlatforms(index: ManifestIndex): string[] {
  return index.manifests.filter((m) => m.platform && m.platform.os !== 'unknown').map((m) => formatPlatform(m.platform as Platform));
}

export function sha256Digest(data: Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}
