// The one way this builder writes a tar: sorted entries, missing parent directories added (0755,
// the owner of the entry below them), one fixed mtime, owners by number only. The same entries give
// the same bytes on any machine and any day: the build context's and every image layer's.
import { pack as tarPack } from 'tar-stream';

/** 2000-01-01T00:00:00Z: fixed, and after 1980 for tools (zip, Python) that cannot store older times. */
export const CONTEXT_MTIME = new Date(Date.UTC(2000, 0, 1));

export interface LayerEntry {
  /** Path inside the tar without a leading "/", e.g. "kubeless/handler.js". */
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'link';
  mode: number;
  uid: number;
  gid: number;
  content?: Buffer;
  /** symlink: its target; link (hard link): the entry name it points at. */
  linkname?: string;
}

export interface TarOptions {
  /**
   * Default true: directory names end in "/", as in docker's own layers. The build context's never
   * did (the daemon reads either); it passes false, so its bytes, and the daemon's cache, stay as they were.
   */
  directorySlash?: boolean;
}

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
export async function layerTar(entries: LayerEntry[], options: TarOptions = {}): Promise<Buffer> {
  const slash = options.directorySlash ?? true;
  const pack = tarPack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const entry of withParents(entries)) {
    const header = {
      name: slash && entry.type === 'directory' ? `${entry.name}/` : entry.name,
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
