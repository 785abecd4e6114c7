// What goes into the function image's own layers, all under /kubeless and owned by the function's
// user (1000), as the Docker engine's `COPY --chown=1000:1000` leaves them:
//   code layer  the function's files (and the deps file when nothing installs it), placed as every
//               engine places them (image/volume-files.ts);
//   deps layer  the result of the install (and compile) step: a directory on disk (a Job's emptyDir)
//               or the tar the Docker Engine hands back from the install container.
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract as tarExtract } from 'tar-stream';
import type { SourceFile } from '../function/files.ts';
import type { MaterialisedSource } from '../function/source.ts';
import { BuilderError } from '../errors.ts';
import { FUNCTION_UID, INSTALL_VOLUME, type BuildPlan } from '../image/plan.ts';
import { volumeFiles } from '../image/volume-files.ts';
import type { LayerEntry } from '../image/tar.ts';

/** "kubeless": INSTALL_VOLUME as a layer path. */
export const VOLUME_ENTRY = INSTALL_VOLUME.replace(/^\//, '');

const owned = (name: string, type: LayerEntry['type'], mode: number, extra: Partial<LayerEntry> = {}): LayerEntry => ({ name, type, mode, uid: FUNCTION_UID, gid: FUNCTION_UID, ...extra });

/** The /kubeless directory itself: owned by the function's user, so the runtime may write there as in Kubeless. */
const volumeEntry = (): LayerEntry => owned(VOLUME_ENTRY, 'directory', 0o755);

/** One of the function's files (or its deps file) under /kubeless, owned by the function's user. */
export function volumeFileEntry(file: SourceFile): LayerEntry {
  const name = `${VOLUME_ENTRY}/${file.path}`;
  if (file.type === 'directory') return owned(name, 'directory', 0o755);
  if (file.type === 'symlink') return owned(name, 'symlink', 0o777, { linkname: file.linkTarget ?? '' });
  return owned(name, 'file', file.mode, { content: file.content });
}

/** The function's files (and the deps file when no install step takes it, by volume-files.ts's rule), as the code layer holds them. */
export function codeLayerEntries(plan: BuildPlan, source: MaterialisedSource): LayerEntry[] {
  return [volumeEntry(), ...volumeFiles(plan, source).code.map(volumeFileEntry)];
}

export class InstalledDirError extends BuilderError {
  constructor(message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super('E_INSTALLED_DIR', 'user', message, options);
  }
}

/**
 * The content of `dir` (what the install and compile steps left in /kubeless) as deps-layer entries,
 * without the paths in `exclude` (the function's own source files, which the code layer carries).
 * Modes keep their permission bits; owners become the function's user.
 */
export async function directoryEntries(dir: string, exclude: ReadonlySet<string> = new Set()): Promise<LayerEntry[]> {
  const entries: LayerEntry[] = [volumeEntry()];
  const walk = async (relative: string): Promise<void> => {
    let names: string[];
    try {
      names = (await readdir(join(dir, relative))).sort();
    } catch (error) {
      throw new InstalledDirError(`installedDir ${dir}: cannot read ${relative || '.'}: ${(error as Error).message}`, { cause: error, details: { installedDir: dir } });
    }
    for (const name of names) {
      const path = relative === '' ? name : `${relative}/${name}`;
      if (exclude.has(path)) continue;
      const full = join(dir, path);
      const stat = await lstat(full);
      const entryName = `${VOLUME_ENTRY}/${path}`;
      if (stat.isDirectory()) {
        entries.push(owned(entryName, 'directory', stat.mode & 0o7777));
        await walk(path);
      } else if (stat.isSymbolicLink()) {
        entries.push(owned(entryName, 'symlink', 0o777, { linkname: await readlink(full) }));
      } else if (stat.isFile()) {
        entries.push(owned(entryName, 'file', stat.mode & 0o7777, { content: await readFile(full) }));
      }
      // Sockets, fifos and devices have no place in an image layer; an install does not leave them.
    }
  };
  await walk('');
  return entries;
}

/** Entries of a tar whose paths start with "kubeless/" (docker's GET /containers/{id}/archive?path=/kubeless). */
export async function tarStreamEntries(stream: Readable): Promise<LayerEntry[]> {
  const entries: LayerEntry[] = [];
  const extract = tarExtract();
  const reading = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      const header = entry.header;
      const name = header.name.replace(/\/+$/, '').replace(/^\.\//, '');
      if (name !== VOLUME_ENTRY && !name.startsWith(`${VOLUME_ENTRY}/`)) continue;
      const mode = (header.mode ?? 0o644) & 0o7777;
      if (header.type === 'directory') entries.push(owned(name, 'directory', name === VOLUME_ENTRY ? 0o755 : mode));
      else if (header.type === 'symlink') entries.push(owned(name, 'symlink', 0o777, { linkname: header.linkname ?? '' }));
      else if (header.type === 'link') entries.push(owned(name, 'link', mode, { linkname: (header.linkname ?? '').replace(/^\.\//, '') }));
      else if (header.type === 'file' || header.type === 'contiguous-file') entries.push(owned(name, 'file', mode, { content: Buffer.concat(chunks) }));
    }
  })();
  await Promise.all([reading, pipeline(stream, extract)]);
  return entries;
}
