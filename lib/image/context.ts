// The build context: an in-memory tar holding the Dockerfile, the deps file (deps/), the
// function's files (function/), the env scripts of the build steps (step-env/) and the /kubeless
// directories whose owner and mode the stages take (volume/). Entries are sorted, with a fixed
// mtime, owner 0:0 and normalised modes, so the same plan always gives the same bytes (and the
// daemon's cache sees the same files).
import type { SourceFile } from '../function/files.ts';
import {
  CONTEXT_DEPS_DIR,
  CONTEXT_FINAL_VOLUME_DIR,
  CONTEXT_FUNCTION_DIR,
  CONTEXT_STEP_VOLUME_DIR,
  FINAL_VOLUME_MODE,
  renderDockerfile,
  STEP_VOLUME_MODE,
  stepEnvScripts,
} from './dockerfile.ts';
import { planIdentity } from './identity.ts';
import { INSTALL_VOLUME, planHasSteps, type BuildPlan } from './plan.ts';
import { layerTar, type LayerEntry } from './tar.ts';
import { volumeFiles } from './volume-files.ts';

export { CONTEXT_MTIME } from './tar.ts';

export interface BuildContextOptions {
  signal?: AbortSignal;
}

export interface BuildContext {
  tar: Buffer;
  dockerfile: string;
  tag: string;
}

export async function createBuildContext(plan: BuildPlan, options: BuildContextOptions = {}): Promise<BuildContext> {
  options.signal?.throwIfAborted();
  const source = await plan.materialise(options.signal);
  options.signal?.throwIfAborted();
  const tag = planIdentity(plan);
  const dockerfile = renderDockerfile(plan, { tag });

  const owner = { uid: 0, gid: 0 };
  const entries: LayerEntry[] = [
    { name: 'Dockerfile', type: 'file', mode: 0o644, content: Buffer.from(dockerfile, 'utf8'), ...owner },
    { name: CONTEXT_FUNCTION_DIR, type: 'directory', mode: 0o755, ...owner },
  ];
  const addFile = (file: SourceFile, prefix: string) => {
    const name = `${prefix}/${file.path}`;
    if (file.type === 'directory') entries.push({ name, type: 'directory', mode: 0o755, ...owner });
    else if (file.type === 'symlink') entries.push({ name, type: 'symlink', mode: 0o777, linkname: file.linkTarget ?? '', ...owner });
    else entries.push({ name, type: 'file', mode: file.mode, content: file.content, ...owner });
  };
  const files = volumeFiles(plan, source);
  for (const file of files.code) addFile(file, CONTEXT_FUNCTION_DIR);
  for (const file of files.deps) addFile(file, CONTEXT_DEPS_DIR);
  for (const script of stepEnvScripts(plan)) entries.push({ name: script.path, type: 'file', mode: 0o644, content: Buffer.from(script.content, 'utf8'), ...owner });
  // Directories that are not 0755: the /kubeless each stage gets.
  entries.push({ name: `${CONTEXT_FINAL_VOLUME_DIR}${INSTALL_VOLUME}`, type: 'directory', mode: FINAL_VOLUME_MODE, ...owner });
  if (planHasSteps(plan)) entries.push({ name: `${CONTEXT_STEP_VOLUME_DIR}${INSTALL_VOLUME}`, type: 'directory', mode: STEP_VOLUME_MODE, ...owner });

  return { tar: await layerTar(entries, { directorySlash: false }), dockerfile, tag };
}
