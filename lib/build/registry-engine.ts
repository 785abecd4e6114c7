// The registry engine path of a build: the image is appended to the runtime image through the
// registry API (lib/engine), pushed to the target or written to an output. The Docker Engine only
// runs an install or compile step, and only when nothing recorded stands in for it.
import { engineAuthFor } from '../docker/auth.ts';
import { appendBuild, type AppendBuildOptions } from '../engine/append-build.ts';
import { buildToOutput, type OutputBuildResult } from '../engine/output-build.ts';
import { BlobCache, defaultCacheDir } from '../image/blob-cache.ts';
import type { OutputSpec } from '../image/output-spec.ts';
import { parseReference } from '../image/reference.ts';
import { LOCAL_REGISTRY_HOST } from '../target.ts';
import type { EngineOutcome, IdentifiedBuild } from './types.ts';

export interface RegistryEngineOptions {
  installedDir: string | undefined;
  runInstall: boolean;
}

/** Appends the image and pushes it to the target (unless a concurrent build pushed the tag first). */
export async function appendOnRegistry(build: IdentifiedBuild, options: RegistryEngineOptions & { platforms: string[] | undefined }): Promise<EngineOutcome> {
  const { id, plan, image, target, log, progress } = build;
  progress({ kind: 'phase', phase: 'build', message: `appending ${id} to ${plan.phases.runtime.image}` });
  const appended = await appendBuild({ ...appendOptions(build, options), platforms: options.platforms });
  const { digest, bytes, buildMs, pushMs } = appended;
  if (appended.raced) {
    log({ event: 'cached', level: 'info', function: id, image, digest, note: 'pushed by a concurrent build' });
    return { digest, cached: true, pushed: false, buildMs, pushMs, bytes };
  }
  progress({ kind: 'phase', phase: 'done', message: `pushed ${target.repository}@${digest}` });
  return { digest, cached: false, pushed: true, buildMs, pushMs, bytes };
}

/**
 * Writes the image to `output`. No registry check: the output is written every time (the tag names
 * the same bytes), its base layers from the cache. A deps layer recorded in the target is reused
 * when a registry was named.
 */
export async function writeOutput(build: IdentifiedBuild, options: RegistryEngineOptions & { output: OutputSpec; cacheDir: string | undefined }): Promise<OutputBuildResult> {
  const { output, cacheDir } = options;
  const built = await buildToOutput({
    ...appendOptions(build, options),
    output,
    cache: blobCache(cacheDir ?? defaultCacheDir()),
    reuseRecordedDeps: build.target.host !== LOCAL_REGISTRY_HOST,
  });
  build.progress({ kind: 'phase', phase: 'done', message: `wrote ${build.image} to ${output.spec}` });
  return built;
}

/** One cache per directory in this process: builds on one base at once fetch each layer once. */
const caches = new Map<string, BlobCache>();

function blobCache(dir: string): BlobCache {
  let cache = caches.get(dir);
  if (cache === undefined) {
    cache = new BlobCache(dir);
    caches.set(dir, cache);
  }
  return cache;
}

/** What the registry engine needs, for a push and for an output alike. */
function appendOptions(build: IdentifiedBuild, options: RegistryEngineOptions): Omit<AppendBuildOptions, 'platforms'> {
  const { plan, tag, target, clients, dockerConfig, networkMode, redact, signal, cleanupSignal, log, progress } = build;
  return {
    plan,
    tag,
    target,
    client: (host: string) => clients.for(host),
    docker: build.docker,
    engineAuth: (base: string) => engineAuthFor(dockerConfig, parseReference(base).registry)?.auth,
    installedDir: options.installedDir,
    runInstall: options.runInstall,
    networkMode,
    redact,
    signal,
    cleanupSignal,
    log,
    progress,
  };
}
