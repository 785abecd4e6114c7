// Archives made at test time, including hostile ones no ordinary tool would write: tar through
// tar-stream, zip through a small writer here, bzip2 and xz through Debian's command-line tools.
import { spawnSync } from 'node:child_process';
import { crc32, deflateRawSync, gzipSync } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';

export interface TestEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  content?: string | Buffer;
  mode?: number;
  linkname?: string;
  /** Tar only: the size written in the header, when it should differ from the content. */
  size?: number;
}

export async function makeTar(entries: TestEntry[]): Promise<Buffer> {
  const pack = tarPack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const entry of entries) {
    const content = entry.content === undefined ? Buffer.alloc(0) : Buffer.from(entry.content);
    const type = entry.type ?? 'file';
    const header = {
      name: entry.name,
      type,
      mode: entry.mode ?? (type === 'directory' ? 0o755 : 0o644),
      size: type === 'file' ? content.length : 0,
      mtime: new Date(0),
      ...(entry.linkname === undefined ? {} : { linkname: entry.linkname }),
    };
    await new Promise<void>((resolve, reject) => {
      pack.entry(header, type === 'file' ? content : Buffer.alloc(0), (error) => (error ? reject(error) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export const gzip = (data: Buffer): Buffer => gzipSync(data);

function filter(program: string, data: Buffer): Buffer {
  const result = spawnSync(program, ['-c'], { input: data, maxBuffer: 1024 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`${program} failed: ${result.error?.message ?? result.stderr.toString()}`);
  return result.stdout;
}

export const bzip2 = (data: Buffer): Buffer => filter('bzip2', data);
export const xz = (data: Buffer): Buffer => filter('xz', data);

export interface ZipEntry extends TestEntry {
  /** Store instead of deflate. */
  store?: boolean;
  /** The uncompressed size the directory claims, when it should lie. */
  claimedSize?: number;
}

/** A zip with Unix "made by" attributes, so modes and links survive. */
export function makeZip(entries: ZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  const typeBits: Record<string, number> = {
    file: 0o100000, directory: 0o040000, symlink: 0o120000, 'character-device': 0o020000, 'block-device': 0o060000, fifo: 0o010000,
  };
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const raw = type === 'symlink' ? Buffer.from(entry.linkname ?? '') : entry.content === undefined ? Buffer.alloc(0) : Buffer.from(entry.content);
    const method = entry.store || raw.length === 0 ? 0 : 8;
    const data = method === 8 ? deflateRawSync(raw) : raw;
    const name = Buffer.from(entry.name, 'utf8');
    const crc = crc32(raw) >>> 0;
    const size = entry.claimedSize ?? raw.length;
    const mode = (typeBits[type] ?? 0o100000) | (entry.mode ?? (type === 'directory' ? 0o755 : 0o644));

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x800, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    locals.push(local, name, data);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE((mode << 16) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);
    offset += local.length + name.length + data.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}
