// Compressed tar streams: gzip (zlib), bzip2 (seek-bzip) and xz (xz-decompress, WebAssembly).
// The tar reader consumes the decompressed bytes as they come, so an archive refused at an early
// entry (too many entries, too deep) never costs its full decompressed size in memory. The stream
// fails with DecompressionLimitError past `limit` bytes, which the tar reader turns into a refusal
// naming the entry being unpacked when the bomb went off.
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import Bunzip from 'seek-bzip';
import xz from 'xz-decompress';

export type TarCompression = 'none' | 'gzip' | 'bzip2' | 'xz';

export function detectTarCompression(bytes: Buffer): TarCompression | undefined {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) return 'gzip';
  if (bytes.length >= 3 && bytes.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (bytes.length >= 6 && bytes.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (bytes.length >= 262 && bytes.toString('latin1', 257, 262) === 'ustar') return 'none';
  return undefined;
}

/** The decompressed data went past the limit. */
export class DecompressionLimitError extends Error {
  readonly limit: number;

  constructor(limit: number) {
    super(`more than ${limit} decompressed bytes`);
    this.limit = limit;
  }
}

/** The compressed data is corrupt (as opposed to the tar inside it). */
export class CompressedDataError extends Error {
  readonly compression: TarCompression;

  constructor(compression: TarCompression, cause: unknown) {
    super((cause as Error).message, { cause });
    this.compression = compression;
  }
}

/** The tar bytes, decompressed as they are read; fails with one of the two errors above. */
export function decompressStream(bytes: Buffer, compression: TarCompression, limit: number): Readable {
  if (compression === 'none') return Readable.from([bytes]);
  return Readable.from(limited(decoded(bytes, compression, limit), compression, limit));
}

function decoded(bytes: Buffer, compression: Exclude<TarCompression, 'none'>, limit: number): AsyncIterable<Buffer | Uint8Array> {
  switch (compression) {
    case 'gzip':
      return Readable.from([bytes]).pipe(createGunzip());
    case 'xz':
      return Readable.fromWeb(new xz.XzReadableStream(new Blob([bytes]).stream()) as never);
    case 'bzip2':
      return bunzip(bytes, limit);
  }
}

async function* limited(source: AsyncIterable<Buffer | Uint8Array>, compression: TarCompression, limit: number): AsyncGenerator<Buffer> {
  let size = 0;
  try {
    for await (const chunk of source) {
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
      size += buffer.length;
      if (size > limit) {
        yield buffer.subarray(0, buffer.length - (size - limit));
        throw new DecompressionLimitError(limit);
      }
      yield buffer;
    }
  } catch (error) {
    if (error instanceof DecompressionLimitError) throw error;
    throw new CompressedDataError(compression, error);
  }
}

/** seek-bzip decodes in one synchronous call: into a buffer that stops growing one byte past the limit. */
async function* bunzip(bytes: Buffer, limit: number): AsyncGenerator<Buffer> {
  let buffer = Buffer.alloc(Math.min(limit + 1, Math.max(64 * 1024, bytes.length * 4)));
  let size = 0;
  const sink = {
    writeByte(byte: number): void {
      if (size === buffer.length) {
        if (size > limit) throw new DecompressionLimitError(limit);
        const grown = Buffer.alloc(Math.min(limit + 1, buffer.length * 2));
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
    // What was decoded goes first, so that the tar reader can name the entry the limit cut.
    if (error instanceof DecompressionLimitError) yield buffer.subarray(0, size);
    throw error;
  }
  yield buffer.subarray(0, size);
}
