// The function's files as they will lie in /kubeless: what the build context holds and what the
// image identity hashes.
import { createHash } from 'node:crypto';

export interface SourceFile {
  /** Relative to /kubeless, "/"-separated, normalised (no ".", "..", empty or leading "/"). */
  path: string;
  type: 'file' | 'directory' | 'symlink';
  /** 0o644 or 0o755 for files, 0o755 for directories, 0o777 for symlinks. */
  mode: number;
  /** Empty for directories and symlinks. */
  content: Buffer;
  /** Symlinks only: the target, relative and inside /kubeless. */
  linkTarget?: string;
  /** sha256 hex of the content (of the target for symlinks, of "" for directories). */
  sha256: string;
}

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Files get 0755 when any execute bit is set, 0644 otherwise, whatever else the archive said. */
export function normaliseFileMode(mode: number | undefined): number {
  return (mode ?? 0) & 0o111 ? 0o755 : 0o644;
}

export function regularFile(path: string, content: Buffer, mode = 0o644): SourceFile {
  return { path, type: 'file', mode: normaliseFileMode(mode), content, sha256: sha256Hex(content) };
}

export function compareFiles(a: SourceFile, b: SourceFile): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}
