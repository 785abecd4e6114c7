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

function decoded(bytes: Buffer, compression: Exclude<TarCompression, 'none'>, limit: number): AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer> {
  switch (compression) {
    case 'gzip':
      return Readable.from([bytes]).pipe(createGunzip());
    case 'xz':
      return Readable.fromWeb(new xz.XzReadableStream(new Blob([bytes]).stream()) as never);
    case 'bzip2':
      return bunzip(bytes, limit);
  }
}

async function* limited(source: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer>, compression: TarCompression, limit: number): AsyncGenerator<Buffer> {
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

/**
 * bzip2, one block at a time. seek-bzip's decode() runs over the whole stream in one synchronous call,
 * which would hold all of the output at once; this is its loop (multistream, as decode(bytes, sink,
 * true) was called) with the output of each block handed on before the next is read. A block holds
 * at most 900 000 bytes before its last run-length step, so about 46 MB once decoded (each run of 4
 * equal bytes may stand for 259); that much, or the limit when smaller, is what is held. Past the limit, what was decoded goes first, so that
 * the tar reader can name the entry the limit cut, then the DecompressionLimitError.
 */
export function* bunzip(bytes: Buffer, limit: number): Generator<Buffer> {
  const input = Object.assign(new Bunzip.Stream(), {
    position: 0,
    // Past the end: undefined, as seek-bzip's own buffer input answers (its bit reader reads 0-bits then).
    readByte(this: { position: number }): number | undefined {
      return bytes[this.position++];
    },
    eof(this: { position: number }): boolean {
      return this.position >= bytes.length;
    },
  });
  const output = new BlockOutput(limit);
  try {
    const decoder = new Bunzip(input, output);
    while (!input.eof()) {
      if (decoder._init_block()) {
        decoder._read_bunzip();
        yield* output.take();
        continue;
      }
      const expected = decoder.reader.read(32) >>> 0;
      if (expected !== decoder.streamCRC) {
        throw new Error(`Data error: Bad stream CRC (got ${decoder.streamCRC.toString(16)} expected ${expected.toString(16)})`);
      }
      if (input.eof()) break;
      decoder._start_bunzip(input, output);
    }
  } catch (error) {
    if (error instanceof DecompressionLimitError) yield* output.take();
    throw error;
  }
}

/** The decoded bytes of the current block, in 64 KiB chunks; refuses a byte past the limit. */
class BlockOutput {
  readonly #limit: number;
  #chunks: Buffer[] = [];
  #chunk = Buffer.allocUnsafe(64 * 1024);
  #used = 0;
  #total = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  writeByte(byte: number): void {
    if (this.#total === this.#limit) throw new DecompressionLimitError(this.#limit);
    if (this.#used === this.#chunk.length) {
      this.#chunks.push(this.#chunk);
      this.#chunk = Buffer.allocUnsafe(64 * 1024);
      this.#used = 0;
    }
    this.#chunk[this.#used++] = byte;
    this.#total += 1;
  }

  /** The chunks so far, handed over (the last one partly filled). */
  take(): Buffer[] {
    const taken = this.#chunks;
    if (this.#used > 0) taken.push(this.#chunk.subarray(0, this.#used));
    this.#chunks = [];
    this.#chunk = Buffer.allocUnsafe(64 * 1024);
    this.#used = 0;
    return taken;
  }
}
