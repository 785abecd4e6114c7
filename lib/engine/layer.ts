// A deterministic image layer: a tar of sorted entries with one fixed mtime and fixed owners,
// gzipped with a fixed level and a fixed header (no timestamp, no file name, OS byte "unknown").
// The same entries give the same bytes, so the same digest, on any machine and any day.
import { gzipSync } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import { CONTEXT_MTIME } from '../image/context.ts';
import { sha256Digest } from '../registry/manifest.ts';

export interface LayerEntry {
  /** Path inside the image without the leading "/", e.g. "kubeless/handler.js". */
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'link';
  mode: number;
  uid: number;
  gid: number;
  content?: Buffer;
  /** symlink: its target; link (hard link): the entry name it points at. */
  linkname?: string;
}

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


/** Adds the parent directories an entry list lacks (mode 0755, owner of the entry), then sorts by name. */
function withParents(entries: LayerEntry[]): LayerEntry[] {
  const byName = new Map<string, LayerEntry>();
  for (const entry of entries) byName.set(entry.name, entry);
  for (const entry of entries) {
    for (let slash = entry.name.indexOf('/'); slash !== -1; slash = entry.name.indexOf('/', slash + 1)) {
      const parent = entry.name.slice(0, slash);
      if (!byName.has(parent)) byName.set(parent, { name: parent, type: 'directory', mode: 0o755, uid: entry.uid, gid: entry.gid });
    }
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The tar of `entries` (parents added, sorted), uncompressed. */
export async function layerTar(entries: LayerEntry[]): Promise<Buffer> {
  const pack = tarPack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const entry of withParents(entries)) {
    const header = {
      // Directories end in "/" as docker's own layers do; the name alone already says which it is.
      name: entry.type === 'directory' ? `${entry.name}/` : entry.name,
      type: entry.type,
      mode: entry.mode,
      mtime: CONTEXT_MTIME,
      uid: entry.uid,
      gid: entry.gid,
      uname: '',
      gname: '',
      size: entry.type === 'file' ? (entry.content?.length ?? 0) : 0,
      ...(entry.linkname === undefined ? {} : { linkname: entry.linkname }),
    };
    await new Promise<void>((resolve, reject) => {
      pack.entry(header, entry.type === 'file' ? (entry.content ?? Buffer.alloc(0)) : Buffer.alloc(0), (error) => (error ? reject(error) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

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
