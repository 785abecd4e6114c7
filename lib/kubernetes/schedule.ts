// scheduleBuild(): what a controller calls when a Function changes. One registry request answers
// "built already?"; only when the answer is no is a build Job created (or joined), and the caller
// gets the pushed image's digest back from the Job's termination message. With the registry engine,
// an image that needs nothing installed or compiled is appended right here instead, with no Job.
import type { KubeConfig } from '@kubernetes/client-node';
import { parseFunction } from '../function/parse.ts';
import { functionId } from '../function/spec.ts';
import { buildResolvedImage, type BuildResult } from '../build.ts';
import { BuilderError } from '../errors.ts';
import { planIdentity } from '../image/identity.ts';
import { resolveBuildPlan, type BuildPlan } from '../image/plan.ts';
import type { DockerConfig } from '../registry/credentials.ts';
import { parseReference } from '../image/reference.ts';
import { RegistryClient } from '../registry/client.ts';
import { transportFor, type RegistrySettings } from '../registry/transport.ts';
import { pullNames, pullRepository, resolveTarget } from '../target.ts';
import type { BuilderConfig } from './config.ts';
import { jobSteps } from './job-steps.ts';
import type { JobLog } from './job-context.ts';
import { runBuildJob, type RunJobOptions } from './jobs.ts';
import { buildJobManifest } from './manifest.ts';
import { planOptions } from './plan-options.ts';
import { withExtraRegistrySettings } from './registry-settings.ts';

export interface ScheduleOptions extends RunJobOptions {
  /** Transport settings for the scheduler's own registry requests, over the config's. */
  registries?: RegistrySettings | undefined;
  /** false: never build in-process, always through a Job (over the config's `builder-fast-path`). */
  fastPath?: boolean | undefined;
}

/** What a build gives a Deployment (as buildFunctionImage's result), plus the Job that made it. */
export interface ScheduledBuild extends Pick<BuildResult, 'function' | 'image' | 'tag' | 'digest' | 'reference' | 'pullImage' | 'prebuilt'> {
  /** The image existed already (before scheduling, or when the Job ran). */
  cached: boolean;
  /** The build Job, when one ran. */
  job?: string | undefined;
  /** This call created the Job (false: it joined one in progress, or none was needed). */
  created: boolean;
}

/**
 * `fn` is the Function as the cluster holds it (object, or its YAML/JSON text): it goes to the Job as
 * is. The config comes from readBuilderConfig(); `enable-build-step` is the caller's to honour.
 */
export async function scheduleBuild(kubeConfig: KubeConfig, fn: string | object, config: BuilderConfig, options: ScheduleOptions = {}): Promise<ScheduledBuild> {
  const spec = parseFunction(fn);
  const id = functionId(spec);
  const log = options.log ?? (() => {});
  if (spec.prebuiltImage) {
    const ref = parseReference(spec.prebuiltImage);
    return { function: id, image: spec.prebuiltImage, tag: ref.tag ?? '', digest: ref.digest ?? '', reference: spec.prebuiltImage, cached: true, prebuilt: true, created: false };
  }
  const dockerConfig = config.registrySecret.dockerConfig;
  const target = resolveTarget({ registry: config.registry, dockerConfig, functionName: spec.name });
  const registries = withExtraRegistrySettings(config.registries, options.registries);

  // Resolved once: the fast path and the Job's manifest use this plan and tag (a url source without
  // a checksum is downloaded once), and the registry is asked about the tag once.
  const plan = await resolveBuildPlan(spec, planOptions({ ...config, registries }, options.signal, log));
  const tag = planIdentity(plan);
  const image = `${target.repository}:${tag}`;
  // The Job pushes and reports under the push name; nodes pull under this one (same registry, same digest).
  const pullRepo = pullRepository(target, config.pullRegistry);
  const pullImage = pullNames(target, pullRepo, tag);

  // A client per question: the Job may run for many minutes between the two (connections are pooled).
  const lookup = () =>
    new RegistryClient({ registry: target.host, credentials: dockerConfig, transport: transportFor(registries, target.host), signal: options.signal }).manifestExists(target.path, tag);
  const existing = await lookup();
  if (existing) {
    log({ event: 'cached', function: id, image, digest: existing.digest });
    return { function: id, image, tag, digest: existing.digest, reference: `${pullRepo}@${existing.digest}`, ...pullImage, cached: true, prebuilt: false, created: false };
  }

  if (config.engine === 'registry' && (options.fastPath ?? config.fastPath) !== false) {
    const appended = await appendInProcess(plan, config, { dockerConfig, registries, signal: options.signal, log });
    if (appended !== undefined) return appended;
  }

  const manifests = buildJobManifest({ name: spec.name, namespace: spec.namespace, uid: spec.uid, source: fn, tag, image, steps: jobSteps(plan) }, config);
  // A Job that completed since the lookup above is joined when its image is there, not rebuilt.
  const imageExists = async (result: { digest: string }) => (await lookup())?.digest === result.digest;
  const outcome = await runBuildJob(kubeConfig, manifests, { imageExists, ...options });
  return { function: id, tag, ...outcome.result, reference: `${pullRepo}@${outcome.result.digest}`, ...pullImage, prebuilt: false, job: outcome.job, created: outcome.created };
}

/**
 * The fast path, for an image the registry was just found not to hold: with nothing to install or
 * compile (or deps whose installed layer the registry already holds), the registry engine appends
 * it here in a few requests, and no Job is needed. undefined when something has to run: then a Job
 * does it.
 */
async function appendInProcess(
  plan: BuildPlan,
  config: BuilderConfig,
  context: { dockerConfig: DockerConfig | undefined; registries: RegistrySettings; signal: AbortSignal | undefined; log: JobLog },
): Promise<ScheduledBuild | undefined> {
  try {
    const result = await buildResolvedImage(plan, {
      engine: 'registry',
      runInstall: false,
      ...(config.registry !== undefined ? { registry: config.registry } : {}),
      ...(config.pullRegistry !== undefined ? { pullRegistry: config.pullRegistry } : {}),
      ...(context.dockerConfig !== undefined ? { dockerConfig: context.dockerConfig } : {}),
      registries: context.registries,
      ...(context.signal !== undefined ? { signal: context.signal } : {}),
      log: context.log,
    });
    context.log({ event: result.cached ? 'cached' : 'appended', function: result.function, image: result.image, digest: result.digest, job: null });
    return {
      function: result.function,
      image: result.image,
      tag: result.tag,
      digest: result.digest,
      reference: result.reference,
      ...(result.pullImage === undefined ? {} : { pullImage: result.pullImage }),
      cached: result.cached,
      prebuilt: false,
      created: false,
    };
  } catch (error) {
    if (!(error instanceof BuilderError && error.code === 'E_INSTALL_REQUIRED')) throw error;
    context.log({ event: 'fast-path-declined', function: functionId(plan.function), reason: error.message });
    return undefined;
  }
}
