// Reads a tar archive (ustar, pax and GNU long names through tar-stream) into a SafeTree, entry by
// entry as the (decompressed) bytes arrive.
import type { Readable } from 'node:stream';
import { extract as tarExtract, type Header } from 'tar-stream';
import { ArchiveUnsafeError, SourceInvalidError } from '../errors.ts';
import type { SourceFile } from '../files.ts';
import { CompressedDataError, DecompressionLimitError, type TarCompression } from './decompress.ts';
import type { ArchiveLimits } from './limits.ts';
import { SafeTree, type EntryType } from './safe-tree.ts';

function entryType(type: Header['type'] | null | undefined): EntryType {
  switch (type) {
    case 'file':
    case 'contiguous-file':
      return 'file';
    case 'directory':
      return 'directory';
    case 'symlink':
      return 'symlink';
    case 'link':
      return 'hardlink';
    case 'character-device':
    case 'block-device':
    case 'fifo':
      return type;
    default:
      return 'other';
  }
}

/** `data`: the tar bytes from decompressStream(), which names the compression for the messages. */
export async function readTar(fn: string, data: Readable, compression: TarCompression, limits: ArchiveLimits): Promise<SourceFile[]> {
  const tree = new SafeTree(fn, limits);
  const extract = tarExtract();
  data.on('error', (error) => extract.destroy(error));
  data.pipe(extract);
  let current: string | undefined;
  try {
    for await (const entry of extract) {
      const header = entry.header;
      current = header.name;
      const raw = { name: header.name, type: entryType(header.type), mode: header.mode ?? 0, linkname: header.linkname ?? '' };
      const path = tree.begin(raw, header.size ?? 0);
      if (raw.type === 'file' && path !== undefined) {
        const chunks: Buffer[] = [];
        for await (const chunk of entry) chunks.push(chunk as Buffer);
        tree.add(raw, path, Buffer.concat(chunks));
      } else {
        entry.resume();
        await new Promise<void>((resolve) => entry.on('end', () => resolve()));
        if (path !== undefined) tree.add(raw, path);
      }
    }
  } catch (error) {
    if (error instanceof SourceInvalidError || error instanceof ArchiveUnsafeError) throw error;
    if (error instanceof DecompressionLimitError) {
      throw tree.unsafe(current ?? '(first entry)', `takes the archive past the limit of ${error.limit} decompressed bytes`);
    }
    if (error instanceof CompressedDataError) {
      throw new SourceInvalidError(fn, `the ${error.compression} data of the archive is corrupt: ${error.message}`, { cause: error });
    }
    if (current === undefined && compression !== 'none') {
      throw new SourceInvalidError(fn, `the ${compression} data does not hold a tar archive`, { cause: error });
    }
    throw new SourceInvalidError(fn, `the tar archive is corrupt: ${(error as Error).message}`, { cause: error });
  } finally {
    data.destroy();
  }
  return tree.finish();
}
