// What a write left on disk: the files under a directory, and temp names beside an output.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

function walk(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

/** Paths of every file under `root`; [] when `root` does not exist (a cache never created holds nothing). */
export function filesUnder(root: string): string[] {
  return existsSync(root) ? walk(root) : [];
}

/**
 * Every file under `root` by its path below it ("/index.json"), with its sha256: equal trees hold equal
 * bytes. A missing `root` throws, so two outputs that were never written do not compare equal.
 */
export function fileTree(root: string): Record<string, string> {
  return Object.fromEntries(walk(root).map((path) => [path.slice(root.length), createHash('sha256').update(readFileSync(path)).digest('hex')]));
}

/** Entries of `dir` an output write leaves beside its result when it fails to clean up (".x.tmp-…", ".x.old-…"). */
export function strays(dir: string): string[] {
  return readdirSync(dir).filter((name) => /\.(tmp|old)-/.test(name));
}
