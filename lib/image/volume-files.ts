// Which of the function's files lie in /kubeless when each build step runs, so that every engine
// (the Dockerfile's stages, the daemonless Job's init containers) gives the steps the same input:
//   deps  what the installation step sees: only the deps file, so that the installed result depends
//         on the deps file and the step's image, command and env alone (and a code change reuses it);
//   code  what is added on top: the function's files, plus the deps file when nothing installs it.
import { chmodSync, lchownSync, lstatSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MaterialisedSource } from '../function/source.ts';
import { compareFiles, type SourceFile } from '../function/files.ts';
import { FUNCTION_UID, type BuildPlan } from './plan.ts';

export interface VolumeFiles {
  deps: SourceFile[];
  code: SourceFile[];
}

export function volumeFiles(plan: BuildPlan, source: MaterialisedSource): VolumeFiles {
  const code = [...source.files];
  const deps: SourceFile[] = [];
  if (source.deps !== undefined) {
    const depsFile: SourceFile = { path: plan.runtime.depName, type: 'file', mode: 0o644, content: source.deps.content, sha256: source.deps.sha256 };
    if (plan.phases.installation !== undefined) deps.push(depsFile);
    // Nothing installs it, but it still belongs in /kubeless beside the code (an archive's is there already).
    else if (!source.deps.fromArchive) code.push(depsFile);
  }
  return { deps, code };
}

/**
 * Writes `files` under `dir` (the daemonless Job's /kubeless emptyDir) as the Dockerfile's
 * `COPY --chown=1000:1000` lays them out: their modes, owned by the function's user when this
 * process may give files away (root). An entry already there (the install step's) is replaced, never
 * written through: a symlink the install left cannot send a code file outside `dir`.
 */
export function writeVolumeFiles(dir: string, files: SourceFile[]): void {
  const owner = process.getuid?.() === 0 ? FUNCTION_UID : undefined;
  const own = (path: string) => {
    if (owner !== undefined) lchownSync(path, owner, owner);
  };
  const ensureDirectory = (path: string) => {
    const found = lstatOrUndefined(path);
    if (found?.isDirectory()) return;
    if (found !== undefined) rmSync(path, { force: true });
    mkdirSync(path, { mode: 0o755 });
    chmodSync(path, 0o755);
    own(path);
  };
  for (const file of [...files].sort(compareFiles)) {
    const parts = file.path.split('/');
    for (let depth = 1; depth < parts.length; depth++) ensureDirectory(join(dir, ...parts.slice(0, depth)));
    const path = join(dir, ...parts);
    if (file.type === 'directory') {
      ensureDirectory(path);
      continue;
    }
    if (lstatOrUndefined(path) !== undefined) rmSync(path, { recursive: true, force: true });
    if (file.type === 'symlink') symlinkSync(file.linkTarget ?? '', path);
    else {
      writeFileSync(path, file.content, { mode: file.mode, flag: 'wx' });
      chmodSync(path, file.mode);
    }
    own(path);
  }
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
