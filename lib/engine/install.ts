// The install (and compile) phase of the registry engine on a local Docker Engine: each step runs in
// a container of its phase image with /kubeless prepared as Kubeless's init containers had it (the
// deps file; for compile also the install result and the code), and what /kubeless holds afterwards
// becomes the deps layer. Used only when no recorded deps layer and no installedDir can stand in.
import type Dockerode from 'dockerode';
import type { BuildLog } from '../build/types.ts';
import { ensureImage, runStep } from '../docker/run-step.ts';
import type { Redactor } from '../redact.ts';
import type { EngineAuth } from '../docker/auth.ts';
import type { ProgressListener } from '../docker/progress.ts';
import type { MaterialisedSource } from '../function/source.ts';
import type { BuildPlan, PlanPhase } from '../image/plan.ts';
import { volumeFiles } from '../image/volume-files.ts';
import { layerTar, type LayerEntry } from '../image/tar.ts';
import { codeLayerEntries, tarStreamEntries, VOLUME_ENTRY, volumeFileEntry } from './kubeless-layers.ts';

export interface InstallOptions {
  /** Credentials for a phase image's registry host. */
  auth: (image: string) => EngineAuth | undefined;
  networkMode?: string | undefined;
  onProgress?: ProgressListener | undefined;
  /** Cancels the steps: the pull, every request to the daemon and the wait for a step's end. */
  signal?: AbortSignal | undefined;
  /** Bounds the removal of a step's container; default: 10 s from when it starts. */
  cleanupSignal?: AbortSignal | undefined;
  endpoint?: string | undefined;
  redact?: Redactor | undefined;
  log?: BuildLog;
}

/** The numeric uid (and gid) an image's USER names, when it names one by number. */
function numericUser(user: string | undefined): { uid: number; gid: number } | undefined {
  const match = /^(\d+)(?::(\d+))?$/.exec(user ?? '');
  if (user === undefined || user === '') return { uid: 0, gid: 0 };
  if (!match) return undefined;
  return { uid: Number(match[1]), gid: Number(match[2] ?? match[1]) };
}

/** Runs the plan's installation and compilation steps; returns /kubeless afterwards as layer entries. */
export async function installOnDocker(docker: Dockerode, plan: BuildPlan, source: MaterialisedSource, options: InstallOptions): Promise<LayerEntry[]> {
  const { installation, compilation } = plan.phases;
  let result: LayerEntry[] | undefined;
  if (installation !== undefined) {
    // Only the deps file, as every engine gives the installation step (image/volume-files.ts).
    result = await step(docker, 'install', installation, volumeFiles(plan, source).deps.map(volumeFileEntry), options);
  }
  if (compilation !== undefined) {
    // The compile step sees what the Docker engine's compile stage sees: the install result, then the code over it.
    const code = codeLayerEntries(plan, source).filter((entry) => entry.name !== VOLUME_ENTRY);
    result = await step(docker, 'compile', compilation, [...(result ?? []).filter((entry) => entry.name !== VOLUME_ENTRY), ...code], options);
  }
  return result ?? [];
}

async function step(docker: Dockerode, name: string, phase: PlanPhase, files: LayerEntry[], options: InstallOptions): Promise<LayerEntry[]> {
  const auth = options.auth(phase.image);
  const user = await ensureImage(docker, phase.image, { auth, what: `image of the ${name} step`, onProgress: options.onProgress, signal: options.signal });
  // /kubeless must be writable for the image's own user, as a Kubernetes emptyDir is. A user given by
  // name cannot be mapped to a uid without the image's passwd file: then the directory is open to all.
  const owner = numericUser(user);
  const entries = files.map((entry) => ({ ...entry, uid: owner?.uid ?? 0, gid: owner?.gid ?? 0 }));
  entries.push({ name: VOLUME_ENTRY, type: 'directory', mode: owner === undefined ? 0o777 : 0o755, uid: owner?.uid ?? 0, gid: owner?.gid ?? 0 });
  options.log?.({ event: 'install-step', level: 'info', step: name, image: phase.image, user: user || 'root' });
  const started = Date.now();
  const run = await runStep(docker, {
    image: phase.image,
    command: phase.command as string,
    env: phase.env,
    input: await layerTar(entries),
    networkMode: options.networkMode,
    step: name,
    signal: options.signal,
    cleanupSignal: options.cleanupSignal,
    endpoint: options.endpoint,
    redact: options.redact,
  });
  try {
    const result = await tarStreamEntries(run.output);
    options.log?.({ event: 'install-step-done', level: 'info', step: name, ms: Date.now() - started, entries: result.length });
    return result;
  } finally {
    await run.remove();
  }
}
