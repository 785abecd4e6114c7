// Compressed tar streams: gzip (zlib), bzip2 (seek-bzip) and xz (xz-decompress, WebAssembly).
// Output is cut off at `limit` bytes: what was produced so far is returned with `truncated`, so
// the tar reader can still name the entry that was being unpacked when the bomb went off.
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import Bunzip from 'seek-bzip';
import xz from 'xz-decompress';
import { SourceInvalidError } from '../errors.ts';

export type TarCompression = 'none' | 'gzip' | 'bzip2' | 'xz';

export interface Decompressed {
  data: Buffer;
  truncated: boolean;
}

export function detectTarCompression(bytes: Buffer): TarCompression | undefined {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) return 'gzip';
  if (bytes.length >= 3 && bytes.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (bytes.length >= 6 && bytes.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (bytes.length >= 262 && bytes.toString('latin1', 257, 262) === 'ustar') return 'none';
  return undefined;
}

export async function decompress(fn: string, bytes: Buffer, compression: TarCompression, limit: number): Promise<Decompressed> {
  try {
    switch (compression) {
      case 'none':
        return { data: bytes, truncated: false };
      case 'gzip':
        return await collect(Readable.from([bytes]).pipe(createGunzip()), limit);
      case 'xz':
        return await collect(Readable.fromWeb(new xz.XzReadableStream(new Blob([bytes]).stream()) as never), limit);
      case 'bzip2':
        return bunzip(bytes, limit);
    }
  } catch (error) {
    throw new SourceInvalidError(fn, `the ${compression} data of the archive is corrupt: ${(error as Error).message}`, { cause: error });
  }
}

async function collect(stream: Readable, limit: number): Promise<Decompressed> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    chunks.push(buffer);
    size += buffer.length;
    if (size > limit) {
      stream.destroy();
      return { data: Buffer.concat(chunks).subarray(0, limit), truncated: true };
    }
  }
  return { data: Buffer.concat(chunks), truncated: false };
}

class LimitReached extends Error {}

function bunzip(bytes: Buffer, limit: number): Decompressed {
  let buffer = Buffer.alloc(Math.min(limit, Math.max(64 * 1024, bytes.length * 4)));
  let size = 0;
  const sink = {
    writeByte(byte: number): void {
      if (size === buffer.length) {
        if (size >= limit) throw new LimitReached();
        const grown = Buffer.alloc(Math.min(limit, buffer.length * 2));
        buffer.copy(grown);
        buffer = grown;
      }
      buffer[size] = byte;
      size += 1;
    },
  };
  try {
    Bunzip.decode(bytes, sink, true);
  } catch (error) {
    if (error instanceof LimitReached) return { data: buffer.subarray(0, size), truncated: true };
    throw error;
  }
  return { data: buffer.subarray(0, size), truncated: false };
}
