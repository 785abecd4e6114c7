// A deterministic image layer: the tar of its entries (image/tar.ts: sorted, one fixed mtime, fixed
// owners), gzipped with a fixed level and a fixed header (no timestamp, no file name, OS byte "unknown").
// The same entries give the same bytes, so the same digest, on any machine and any day.
import { gzipSync } from 'node:zlib';
import { layerTar, type LayerEntry } from '../image/tar.ts';
import { sha256Digest } from '../registry/manifest.ts';

export interface Layer {
  /** The gzipped tar: what the registry stores. */
  blob: Buffer;
  /** sha256 of the blob: the manifest's layer digest. */
  digest: string;
  /** sha256 of the uncompressed tar: the config's rootfs.diff_ids entry. */
  diffId: string;
  size: number;
}

/** zlib's level 6 (its default), written down so a change of default cannot change a digest. */
const GZIP_LEVEL = 6;
/** RFC 1952 OS byte 255: "unknown", instead of whatever the zlib build would write. */
const GZIP_OS_UNKNOWN = 0xff;

/** Gzip with a fixed level and header: bytes 4–7 (mtime) zero, byte 9 (OS) "unknown". */
function deterministicGzip(data: Buffer): Buffer {
  const gz = gzipSync(data, { level: GZIP_LEVEL });
  gz.writeUInt32LE(0, 4);
  gz[9] = GZIP_OS_UNKNOWN;
  return gz;
}

export async function buildLayer(entries: LayerEntry[]): Promise<Layer> {
  const tar = await layerTar(entries);
  const blob = deterministicGzip(tar);
  return { blob, digest: sha256Digest(blob), diffId: sha256Digest(tar), size: blob.length };
}
