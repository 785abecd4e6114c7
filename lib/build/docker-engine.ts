// The Docker Engine path of a build: `docker build` of the generated context, then (when pushing)
// tag, `docker push`, and removal of the local names, whatever happened. The registry check before
// it is the pipeline's (build.ts); this is what runs when the image is not there yet.
import { randomBytes } from 'node:crypto';
import { buildImage } from '../docker/build-image.ts';
import { localImageId, pushImage, removeImage, tagImage } from '../docker/push-image.ts';
import { engineAuthFor, type EngineAuth } from '../docker/auth.ts';
import { retryCleanup } from '../docker/cleanup.ts';
import { PushFailedError } from '../docker/errors.ts';
import { EngineError } from '../engine/errors.ts';
import { createBuildContext } from '../image/context.ts';
import { planHasSteps, planImages } from '../image/plan.ts';
import { parseReference } from '../image/reference.ts';
import type { EngineOutcome, IdentifiedBuild } from './types.ts';

/** Pushes retried when a concurrent call of another process untagged the shared name in between. */
const PUSH_ATTEMPTS = 3;

/**
 * Builds the image on the Docker Engine; with `push`, pushes it and leaves no local name behind.
 * `runInstall: false` refuses a function with an install or compile step: this engine runs that step
 * in every build.
 */
export async function buildOnDocker(build: IdentifiedBuild, options: { push: boolean; runInstall: boolean }): Promise<EngineOutcome> {
  const { id, plan, tag, image, target, dockerConfig, signal, cleanupSignal, log, progress } = build;
  const { push } = options;
  if (!options.runInstall && planHasSteps(plan)) {
    throw new EngineError('E_INSTALL_REQUIRED', 'user', `function ${id} has an install or compile step, and runInstall is false; the docker engine runs that step in every build`, { details: { function: id } });
  }
  const buildStarted = Date.now();
  const context = await createBuildContext(plan, { signal });
  const { docker: daemon, endpoint } = await build.docker();
  const registryAuths: Record<string, EngineAuth> = {};
  for (const host of new Set(planImages(plan).map((base) => parseReference(base).registry))) {
    const credential = engineAuthFor(dockerConfig, host);
    log({ event: 'credentials', level: 'info', function: id, registry: host, purpose: 'pull base image', key: credential?.key ?? null });
    if (credential) registryAuths[host] = credential.auth;
  }
  progress({ kind: 'phase', phase: 'build', message: `building ${image} on ${endpoint}` });
  // A pushed image is built under a name of this call's own, so that whatever happens, this
  // call removes its own image and only that: another process building the same function in
  // the same daemon keeps its tag, and no untagged image or repo@digest reference is left.
  // `image` itself names it only from just before the push until the cleanup.
  const buildName = push ? `${target.repository}:${tag.slice(0, 32)}-build-${randomBytes(6).toString('hex')}` : image;
  const cleanupFailed = (what: string, error: unknown) => log({ event: 'cleanup-failed', level: 'warn', function: id, what, message: String((error as Error)?.message ?? error) });
  let imageId: string | undefined;
  try {
    const result = await buildImage(daemon, {
      context: context.tar,
      tags: [buildName],
      registryAuths,
      networkMode: build.networkMode,
      onProgress: progress,
      signal,
      cleanupSignal,
      onCleanupFailed: cleanupFailed,
      endpoint,
      redact: build.redact,
    });
    imageId = result.imageId;
    const buildMs = Date.now() - buildStarted;
    log({ event: 'built', level: 'info', function: id, image, imageId, ms: buildMs });
    if (!push) {
      progress({ kind: 'phase', phase: 'done', message: `built ${image} in the local daemon` });
      return { digest: imageId, cached: false, pushed: false, buildMs, pushMs: 0 };
    }

    const pushStarted = Date.now();
    // Another build of the same tag may have finished meanwhile; its image is as good as ours.
    const raced = await build.clients.for(target.host).manifestExists(target.path, tag);
    if (raced) {
      log({ event: 'cached', level: 'info', function: id, image, digest: raced.digest, note: 'pushed by a concurrent build' });
      return { digest: raced.digest, cached: true, pushed: false, buildMs, pushMs: Date.now() - pushStarted };
    }
    const credential = engineAuthFor(dockerConfig, target.host);
    log({ event: 'credentials', level: 'info', function: id, registry: target.host, purpose: 'push', key: credential?.key ?? null });
    progress({ kind: 'phase', phase: 'push', message: `pushing ${image}` });
    let pushed;
    for (let attempt = 1; ; attempt++) {
      await tagImage(daemon, imageId, target.repository, tag, signal, endpoint);
      try {
        pushed = await pushImage(daemon, {
          repository: target.repository,
          tag,
          auth: credential?.auth,
          credentialKey: credential?.key,
          onProgress: progress,
          signal,
          endpoint,
        });
        break;
      } catch (error) {
        // A concurrent call (another process, same daemon) removed `image` between our tag and our push.
        const untagged = error instanceof PushFailedError && /does not exist locally/i.test(String(error.details.daemonMessage));
        if (!untagged || attempt >= PUSH_ATTEMPTS) throw error;
      }
    }
    const pushMs = Date.now() - pushStarted;
    log({ event: 'pushed', level: 'info', function: id, image, digest: pushed.digest, ms: pushMs });
    progress({ kind: 'phase', phase: 'done', message: `pushed ${target.repository}@${pushed.digest}` });
    return { digest: pushed.digest, cached: false, pushed: true, buildMs, pushMs };
  } finally {
    // The registry holds the result; a failed push must not leave a tag that looks like a result either.
    if (push) {
      // `image` only while it still names this call's image: another process may have moved it to its own.
      let shared: string | undefined;
      await retryCleanup(async (cleanup) => (shared = await localImageId(daemon, image, cleanup)), cleanupSignal).catch((error: unknown) => cleanupFailed(image, error));
      if (shared !== undefined && shared === imageId) await removeImage(daemon, image, cleanupSignal).catch((error: unknown) => cleanupFailed(image, error));
      await removeImage(daemon, buildName, cleanupSignal).catch((error: unknown) => cleanupFailed(buildName, error));
    }
    // Without a push, a failed build tagged nothing; `image` could only be another call's result.
  }
}
