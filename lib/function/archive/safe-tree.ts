// Collects archive entries into the function's file tree, refusing anything that could escape
// /kubeless or is not a plain file, directory or link, and enforcing the bomb limits.
//
// Links: a symlink is kept when its target is relative and, resolved from the link's own
// directory through real directories only, stays inside the root (a target that passes through
// another symlink is refused, since only lexical resolution could be checked otherwise). A hard
// link to a regular file earlier in the archive becomes a copy of that file. Anything else that
// links is refused. No entry may lie beneath a symlink or a file.
import { ArchiveUnsafeError } from '../errors.ts';
import { compareFiles, normaliseFileMode, sha256Hex, type SourceFile } from '../files.ts';
import type { ArchiveLimits } from './limits.ts';

export type EntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'character-device' | 'block-device' | 'fifo' | 'socket' | 'other';

export interface RawEntry {
  name: string;
  type: EntryType;
  mode?: number;
  /** Symlink and hard link targets as the archive wrote them. */
  linkname?: string;
}

const MAX_PATH = 4096;
const MAX_COMPONENT = 255;
/** Directories deep; node_modules and site-packages trees stay far below. Bounds the work per entry. */
const MAX_DEPTH = 100;

export class SafeTree {
  readonly #fn: string;
  readonly #limits: ArchiveLimits;
  readonly #entries = new Map<string, SourceFile>();
  /** Directories that exist because some entry lies beneath them. */
  readonly #impliedDirs = new Set<string>();
  #count = 0;
  #total = 0;

  constructor(fn: string, limits: ArchiveLimits) {
    this.#fn = fn;
    this.#limits = limits;
  }

  unsafe(entry: string, reason: string): ArchiveUnsafeError {
    return new ArchiveUnsafeError(this.#fn, entry, reason);
  }

  /** Checks an entry's name, type and claimed size before its data is read; returns its normalised path. */
  begin(entry: RawEntry, claimedSize: number): string | undefined {
    this.#count += 1;
    if (this.#count > this.#limits.maxEntries) {
      throw this.unsafe(entry.name, `is past the limit of ${this.#limits.maxEntries} entries per archive`);
    }
    const path = this.#normalise(entry.name);
    if (path === undefined) {
      if (entry.type === 'directory') return undefined;
      throw this.unsafe(entry.name, 'has no file name');
    }
    switch (entry.type) {
      case 'file':
      case 'directory':
      case 'symlink':
      case 'hardlink':
        break;
      case 'character-device':
      case 'block-device':
      case 'fifo':
      case 'socket':
        throw this.unsafe(entry.name, `is a ${entry.type.replace('-', ' ')}; only files, directories and links may be in a function archive`);
      default:
        throw this.unsafe(entry.name, 'has an entry type other than file, directory or link');
    }
    if (entry.type === 'file') this.#checkSize(entry.name, claimedSize, this.#total + claimedSize);
    this.#checkPlace(entry.name, path, entry.type === 'directory');
    return path;
  }

  /** Adds an entry whose data has been read (files) or that has none. */
  add(entry: RawEntry, path: string, content: Buffer = Buffer.alloc(0)): void {
    if (entry.type === 'directory') {
      if (!this.#entries.has(path)) this.#entries.set(path, { path, type: 'directory', mode: 0o755, content: Buffer.alloc(0), sha256: sha256Hex('') });
      this.#imply(path);
      return;
    }
    if (entry.type === 'file') {
      this.#total += content.length;
      this.#checkSize(entry.name, content.length, this.#total);
      this.#entries.set(path, { path, type: 'file', mode: normaliseFileMode(entry.mode), content, sha256: sha256Hex(content) });
    } else if (entry.type === 'symlink') {
      const target = entry.linkname ?? '';
      if (target === '') throw this.unsafe(entry.name, 'is a symlink without a target');
      if (target.startsWith('/')) throw this.unsafe(entry.name, `is a symlink to the absolute path ${JSON.stringify(target)}; links must stay inside the function`);
      if (target.includes('\\') || target.includes('\0')) throw this.unsafe(entry.name, 'is a symlink whose target holds "\\" or NUL');
      this.#entries.set(path, { path, type: 'symlink', mode: 0o777, content: Buffer.alloc(0), linkTarget: target, sha256: sha256Hex(target) });
    } else if (entry.type === 'hardlink') {
      let target: string | undefined;
      try {
        target = this.#normalise(entry.linkname ?? '');
      } catch {
        target = undefined;
      }
      const original = target === undefined ? undefined : this.#entries.get(target);
      if (original === undefined || original.type !== 'file') {
        throw this.unsafe(entry.name, `is a hard link to ${JSON.stringify(entry.linkname ?? '')}, which is not a file earlier in the archive`);
      }
      this.#total += original.content.length;
      this.#checkSize(entry.name, original.content.length, this.#total);
      this.#entries.set(path, { ...original, path });
    }
    this.#imply(path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '');
  }

  /** The tree, sorted by path, once every link is known to stay inside. */
  finish(): SourceFile[] {
    for (const file of this.#entries.values()) {
      if (file.type === 'symlink') this.#checkLink(file);
    }
    return [...this.#entries.values()].sort(compareFiles);
  }

  #normalise(name: string): string | undefined {
    if (name.includes('\0')) throw this.unsafe(name, 'holds a NUL character');
    if (name.includes('\\')) throw this.unsafe(name, 'holds "\\"; archive paths must use "/"');
    if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) throw this.unsafe(name, 'is an absolute path; entries must be relative to the function root');
    const parts: string[] = [];
    for (const part of name.split('/')) {
      if (part === '' || part === '.') continue;
      if (part === '..') throw this.unsafe(name, 'has a ".." segment that could leave the function root');
      if (part.length > MAX_COMPONENT) throw this.unsafe(name, `has a path component longer than ${MAX_COMPONENT} characters`);
      parts.push(part);
      if (parts.length > MAX_DEPTH) throw this.unsafe(name.slice(0, 200), `is nested more than ${MAX_DEPTH} directories deep`);
    }
    if (parts.length === 0) return undefined;
    const path = parts.join('/');
    if (path.length > MAX_PATH) throw this.unsafe(name, `is longer than ${MAX_PATH} characters`);
    return path;
  }

  #checkSize(name: string, size: number, total: number): void {
    if (!Number.isSafeInteger(size) || size < 0) throw this.unsafe(name, 'has an invalid size');
    if (size > this.#limits.maxEntryBytes) {
      throw this.unsafe(name, `is ${size} bytes unpacked, more than the limit of ${this.#limits.maxEntryBytes} bytes per file`);
    }
    if (total > this.#limits.maxTotalBytes) {
      throw this.unsafe(name, `takes the archive past the limit of ${this.#limits.maxTotalBytes} unpacked bytes`);
    }
  }

  #checkPlace(name: string, path: string, isDirectory: boolean): void {
    const existing = this.#entries.get(path);
    if (existing !== undefined && !(isDirectory && existing.type === 'directory')) {
      throw this.unsafe(name, 'appears twice in the archive');
    }
    if (!isDirectory && this.#impliedDirs.has(path)) throw this.unsafe(name, 'is a directory elsewhere in the archive');
    // Upwards until a directory already known to hold entries: it and everything above it were
    // checked when it became one, so each ancestor is looked at once per archive, not once per entry.
    let slash = path.lastIndexOf('/');
    while (slash !== -1) {
      const dir = path.slice(0, slash);
      if (this.#impliedDirs.has(dir)) return;
      const ancestor = this.#entries.get(dir);
      if (ancestor !== undefined && ancestor.type !== 'directory') {
        throw this.unsafe(name, `lies beneath ${JSON.stringify(ancestor.path)}, which is a ${ancestor.type}, not a directory`);
      }
      slash = dir.lastIndexOf('/');
    }
  }

  #imply(dir: string): void {
    let current = dir;
    while (current !== '' && !this.#impliedDirs.has(current)) {
      this.#impliedDirs.add(current);
      const slash = current.lastIndexOf('/');
      current = slash === -1 ? '' : current.slice(0, slash);
    }
  }

  #checkLink(link: SourceFile): void {
    const stack = link.path.split('/').slice(0, -1);
    const parts = (link.linkTarget ?? '').split('/');
    parts.forEach((part, index) => {
      if (part === '' || part === '.') return;
      if (part === '..') {
        if (stack.length === 0) throw this.unsafe(link.path, `is a symlink to ${JSON.stringify(link.linkTarget)}, which points outside the function root`);
        stack.pop();
        return;
      }
      stack.push(part);
      const through = this.#entries.get(stack.join('/'));
      if (index < parts.length - 1 && through !== undefined && through.type === 'symlink') {
        throw this.unsafe(link.path, `is a symlink whose target passes through the symlink ${JSON.stringify(through.path)}`);
      }
      if (index < parts.length - 1 && through !== undefined && through.type === 'file') {
        throw this.unsafe(link.path, `is a symlink whose target passes through the file ${JSON.stringify(through.path)}`);
      }
    });
  }
}
