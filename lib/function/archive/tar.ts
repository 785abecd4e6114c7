// Reads a tar archive (ustar, pax and GNU long names through tar-stream) into a SafeTree.
import { extract as tarExtract, type Header } from 'tar-stream';
import { ArchiveUnsafeError, SourceInvalidError } from '../errors.ts';
import type { SourceFile } from '../files.ts';
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

/**
 * `truncatedAt`: the data was cut off by the decompression limit (that many bytes); reading then
 * fails on the entry in progress, which the error names.
 */
export async function readTar(fn: string, data: Buffer, limits: ArchiveLimits, truncatedAt?: number): Promise<SourceFile[]> {
  const tree = new SafeTree(fn, limits);
  const extract = tarExtract();
  extract.end(data);
  let current = '(first entry)';
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
    if (truncatedAt !== undefined) throw tree.unsafe(current, `takes the archive past the limit of ${truncatedAt} decompressed bytes`);
    throw new SourceInvalidError(fn, `the tar archive is corrupt: ${(error as Error).message}`, { cause: error });
  }
  if (truncatedAt !== undefined) throw tree.unsafe(current, `takes the archive past the limit of ${truncatedAt} decompressed bytes`);
  return tree.finish();
}
