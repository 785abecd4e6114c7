// Reads a zip archive from memory through its central directory (the authoritative list; local
// headers may defer their sizes to data descriptors). Stored and deflated entries are supported,
// zip64 records too; encrypted entries and other methods are refused. Every entry is checked by
// the SafeTree before its data is inflated, and inflation stops one byte past the size the
// directory claims, so a lying header cannot inflate into a bomb.
import { crc32, inflateRawSync } from 'node:zlib';
import { SourceInvalidError } from '../errors.ts';
import type { SourceFile } from '../files.ts';
import type { ArchiveLimits } from './limits.ts';
import { SafeTree, type EntryType } from './safe-tree.ts';

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX32 = 0xffffffff;

const S_IFMT = 0o170000;
const UNIX_TYPES: Record<number, EntryType> = {
  0o100000: 'file',
  0o040000: 'directory',
  0o120000: 'symlink',
  0o020000: 'character-device',
  0o060000: 'block-device',
  0o010000: 'fifo',
  0o140000: 'socket',
};

export function isZip(bytes: Buffer): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && (bytes[2] === 3 || bytes[2] === 5) && (bytes[3] === 4 || bytes[3] === 6);
}

export function readZip(fn: string, bytes: Buffer, limits: ArchiveLimits): SourceFile[] {
  const corrupt = (what: string): never => {
    throw new SourceInvalidError(fn, `the zip archive is corrupt or unsupported: ${what}`);
  };
  const u16 = (at: number): number => (at + 2 <= bytes.length ? bytes.readUInt16LE(at) : corrupt('truncated'));
  const u32 = (at: number): number => (at + 4 <= bytes.length ? bytes.readUInt32LE(at) : corrupt('truncated'));
  const u64 = (at: number): number => {
    const value = at + 8 <= bytes.length ? bytes.readBigUInt64LE(at) : corrupt('truncated');
    return value > BigInt(Number.MAX_SAFE_INTEGER) ? corrupt('a zip64 field is out of range') : Number(value);
  };

  let eocd = -1;
  for (let at = bytes.length - 22; at >= Math.max(0, bytes.length - 22 - 0xffff); at -= 1) {
    if (bytes.readUInt32LE(at) === EOCD) {
      eocd = at;
      break;
    }
  }
  if (eocd === -1) corrupt('no end of central directory record');
  let count = u16(eocd + 10);
  let cdSize = u32(eocd + 12);
  let cdOffset = u32(eocd + 16);
  if (u16(eocd + 4) !== 0 || u16(eocd + 6) !== 0) corrupt('multi-disk archives are not supported');
  const locator = eocd - 20;
  if (locator >= 0 && bytes.readUInt32LE(locator) === ZIP64_LOCATOR) {
    const record = u64(locator + 8);
    if (u32(record) !== ZIP64_EOCD) corrupt('bad zip64 end of central directory record');
    count = u64(record + 32);
    cdSize = u64(record + 40);
    cdOffset = u64(record + 48);
  }
  if (cdOffset + cdSize > bytes.length) corrupt('the central directory lies outside the file');

  const tree = new SafeTree(fn, limits);
  let at = cdOffset;
  for (let index = 0; index < count; index += 1) {
    if (u32(at) !== CENTRAL) corrupt(`central directory entry ${index + 1} has a bad signature`);
    const madeBy = u16(at + 4) >> 8;
    const flags = u16(at + 8);
    const method = u16(at + 10);
    const crc = u32(at + 16);
    let compressed = u32(at + 20);
    let size = u32(at + 24);
    const nameLength = u16(at + 28);
    const extraLength = u16(at + 30);
    const commentLength = u16(at + 32);
    const external = u32(at + 38);
    let localOffset = u32(at + 42);
    if (at + 46 + nameLength > bytes.length) corrupt('truncated central directory');
    const name = bytes.subarray(at + 46, at + 46 + nameLength).toString(flags & 0x800 ? 'utf8' : 'latin1');
    const extraStart = at + 46 + nameLength;
    for (let x = extraStart; x + 4 <= extraStart + extraLength; ) {
      const id = u16(x);
      const length = u16(x + 2);
      if (id === 0x0001) {
        let field = x + 4;
        if (size === MAX32) { size = u64(field); field += 8; }
        if (compressed === MAX32) { compressed = u64(field); field += 8; }
        if (localOffset === MAX32) { localOffset = u64(field); field += 8; }
      }
      x += 4 + length;
    }
    at = extraStart + extraLength + commentLength;

    // Unix "made by" hosts (3 = Unix, 19 = OS X) keep st_mode in the high half of the attributes.
    const unixMode = madeBy === 3 || madeBy === 19 ? external >>> 16 : 0;
    let type: EntryType = name.endsWith('/') ? 'directory' : 'file';
    if (unixMode & S_IFMT) type = UNIX_TYPES[unixMode & S_IFMT] ?? 'other';
    const entry = { name, type, mode: unixMode & 0o7777 };
    const path = tree.begin(entry, type === 'file' ? size : 0);
    if (flags & 0x1) throw new SourceInvalidError(fn, `zip entry ${JSON.stringify(name)} is encrypted, which is not supported`);
    if (method !== 0 && method !== 8) {
      throw new SourceInvalidError(fn, `zip entry ${JSON.stringify(name)} uses compression method ${method}; only stored and deflate are supported`);
    }
    if (path === undefined) continue;
    if (u32(localOffset) !== LOCAL) corrupt(`entry ${JSON.stringify(name)} has no local header`);
    const dataOffset = localOffset + 30 + u16(localOffset + 26) + u16(localOffset + 28);
    if (dataOffset + compressed > bytes.length) corrupt(`entry ${JSON.stringify(name)} runs past the end of the file`);

    if (type === 'symlink' && size > 4096) throw tree.unsafe(name, 'is a symlink with a target longer than 4096 bytes');
    if (type === 'file' || type === 'symlink') {
      const data = bytes.subarray(dataOffset, dataOffset + compressed);
      let content: Buffer;
      if (method === 0) {
        content = Buffer.from(data);
      } else {
        try {
          content = inflateRawSync(data, { maxOutputLength: Math.max(1, size + 1) });
        } catch (error) {
          if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
            throw tree.unsafe(name, `inflates to more than the ${size} bytes its header claims`);
          }
          throw new SourceInvalidError(fn, `zip entry ${JSON.stringify(name)} does not inflate: ${(error as Error).message}`, { cause: error });
        }
      }
      if (content.length !== size) {
        throw tree.unsafe(name, `unpacks to ${content.length} bytes although its header claims ${size}`);
      }
      if ((crc32(content) >>> 0) !== crc) corrupt(`entry ${JSON.stringify(name)} fails its CRC check`);
      if (type === 'symlink') {
        tree.add({ ...entry, linkname: content.toString('utf8') }, path);
      } else {
        tree.add(entry, path, content);
      }
    } else {
      tree.add(entry, path);
    }
  }
  return tree.finish();
}
