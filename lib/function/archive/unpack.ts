// Unpacks a +zip or +compressedtar source, recognising the format by its magic bytes rather than
// trusting the content type alone.
import { SourceInvalidError } from '../errors.ts';
import type { SourceFile } from '../files.ts';
import type { ArchiveKind } from '../spec.ts';
import { decompressStream, detectTarCompression } from './decompress.ts';
import { tarStreamLimit, type ArchiveLimits } from './limits.ts';
import { readTar } from './tar.ts';
import { isZip, readZip } from './zip.ts';

export async function unpackArchive(fn: string, bytes: Buffer, kind: ArchiveKind, limits: ArchiveLimits): Promise<SourceFile[]> {
  if (kind === 'zip') {
    if (!isZip(bytes)) {
      const hint = detectTarCompression(bytes) === undefined ? '' : '; it looks like a tar archive: use +compressedtar';
      throw new SourceInvalidError(fn, `spec.function-content-type says +zip but the source is not a zip archive${hint}`);
    }
    return readZip(fn, bytes, limits);
  }
  const compression = detectTarCompression(bytes);
  if (compression === undefined) {
    const hint = isZip(bytes) ? '; it looks like a zip archive: use +zip' : '';
    throw new SourceInvalidError(fn, `spec.function-content-type says +compressedtar but the source is not a tar, tar.gz, tar.bz2 or tar.xz archive${hint}`);
  }
  return readTar(fn, decompressStream(bytes, compression, tarStreamLimit(limits)), compression, limits);
}
