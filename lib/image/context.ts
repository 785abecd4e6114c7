// The build context: an in-memory tar holding the Dockerfile, the deps file (deps/), the
// function's files (function/), the env scripts of the build steps (step-env/) and the /kubeless
// directories whose owner and mode the stages take (volume/). Entries are sorted, with a fixed
// mtime, owner 0:0 and normalised modes, so the same plan always gives the same bytes (and the
// daemon's cache sees the same files).
import { pack as tarPack } from 'tar-stream';
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
import { INSTALL_VOLUME, type BuildPlan } from './plan.ts';
import { volumeFiles } from './volume-files.ts';

/** 2000-01-01T00:00:00Z: fixed, and after 1980 for tools (zip, Python) that cannot store older times. */
export const CONTEXT_MTIME = new Date(Date.UTC(2000, 0, 1));

export interface BuildContextOptions {
  signal?: AbortSignal;
}

export interface BuildContext {
  tar: Buffer;
  dockerfile: string;
  tag: string;
}

interface ContextEntry {
  name: string;
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  content?: Buffer;
  linkname?: string;
}

export async function createBuildContext(plan: BuildPlan, options: BuildContextOptions = {}): Promise<BuildContext> {
  options.signal?.throwIfAborted();
  const source = await plan.materialise(options.signal);
  options.signal?.throwIfAborted();
  const tag = planIdentity(plan);
  const dockerfile = renderDockerfile(plan, { tag });

  const entries: ContextEntry[] = [{ name: 'Dockerfile', type: 'file', mode: 0o644, content: Buffer.from(dockerfile, 'utf8') }];
  const directories = new Set<string>([CONTEXT_FUNCTION_DIR]);
  const addParents = (name: string) => {
    for (let slash = name.indexOf('/'); slash !== -1; slash = name.indexOf('/', slash + 1)) directories.add(name.slice(0, slash));
  };
  const addFile = (file: SourceFile, prefix: string) => {
    const name = `${prefix}/${file.path}`;
    addParents(name);
    if (file.type === 'directory') directories.add(name);
    else if (file.type === 'symlink') entries.push({ name, type: 'symlink', mode: 0o777, linkname: file.linkTarget ?? '' });
    else entries.push({ name, type: 'file', mode: file.mode, content: file.content });
  };
  const files = volumeFiles(plan, source);
  for (const file of files.code) addFile(file, CONTEXT_FUNCTION_DIR);
  for (const file of files.deps) addFile(file, CONTEXT_DEPS_DIR);
  for (const script of stepEnvScripts(plan)) {
    addParents(script.path);
    entries.push({ name: script.path, type: 'file', mode: 0o644, content: Buffer.from(script.content, 'utf8') });
  }
  // Directories that are not 0755: the /kubeless each stage gets.
  const modes = new Map([[`${CONTEXT_FINAL_VOLUME_DIR}${INSTALL_VOLUME}`, FINAL_VOLUME_MODE]]);
  if (plan.phases.installation !== undefined || plan.phases.compilation !== undefined) modes.set(`${CONTEXT_STEP_VOLUME_DIR}${INSTALL_VOLUME}`, STEP_VOLUME_MODE);
  for (const name of modes.keys()) {
    addParents(name);
    directories.add(name);
  }
  for (const name of directories) entries.push({ name, type: 'directory', mode: modes.get(name) ?? 0o755 });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  const pack = tarPack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const entry of entries) {
    const header = {
      name: entry.name,
      type: entry.type,
      mode: entry.mode,
      mtime: CONTEXT_MTIME,
      uid: 0,
      gid: 0,
      uname: '',
      gname: '',
      size: entry.content?.length ?? 0,
      ...(entry.linkname === undefined ? {} : { linkname: entry.linkname }),
    };
    await new Promise<void>((resolve, reject) => {
      pack.entry(header, entry.content ?? Buffer.alloc(0), (error) => (error ? reject(error) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return { tar: Buffer.concat(chunks), dockerfile, tag };
}
