// buildFunctionImage(): the pipeline of DESIGN.md in one call.
//   parse → resolve (runtime images to digests) → identify (tag) → one registry request
//   → tag exists: cached result, the Docker Engine is not even contacted
//   → else build (Docker Engine) → push → local tag removed → { image, digest, reference, ... }
import { randomBytes } from 'node:crypto';
import type Dockerode from 'dockerode';
import { connectDocker, dockerEndpointFromEnv } from './docker/connect.ts';
import { buildImage } from './docker/build-image.ts';
import { localImageId, pushImage, removeImage, tagImage } from './docker/push-image.ts';
import { engineAuth, type EngineAuth } from './docker/auth.ts';
import type { DockerProgress } from './docker/progress.ts';
import { retryCleanup } from './docker/cleanup.ts';
import { aborted, cleanupDeadline, deadline } from './docker/deadline.ts';
import { BuildAbortedError, PushFailedError } from './docker/errors.ts';
import { BuilderError } from './errors.ts';
import type { ArchiveLimits } from './function/archive/limits.ts';
import type { DownloadOptions } from './function/download.ts';
import { parseFunction } from './function/parse.ts';
import { functionId, type FunctionSpec } from './function/spec.ts';
import { parseReference } from './image/reference.ts';
import { parseDockerConfig, resolveCredentials, type DockerConfig } from './registry/credentials.ts';
import { RegistryClient, type RegistryLogEvent } from './registry/client.ts';
import { transportFor, type RegistrySettings } from './registry/transport.ts';
import { parseRuntimeCatalog, type RuntimeCatalog } from './runtime/catalog.ts';
import { defaultRuntimeCatalog } from './runtime/default-catalog.ts';
import { DEFAULT_PLATFORM, planImages, resolveBuildPlan, type BuildPlan } from './image/plan.ts';
import { planIdentity } from './image/identity.ts';
import { createBuildContext } from './image/context.ts';
import { redactor } from './redact.ts';
import { LOCAL_REGISTRY_HOST, pullRepository, resolveTarget, type BuildTarget } from './target.ts';
import { appendBuild } from './engine/append-build.ts';
import { emptyCounts, type ByteCounts } from './engine/copy-blobs.ts';
import { EngineError, parseEngine, type BuildEngine } from './engine/errors.ts';
import { buildToOutput } from './engine/output-build.ts';
import { BlobCache, defaultCacheDir } from './image/blob-cache.ts';
import { checkOutputPath, OutputSpecError, parseOutputSpec, type OutputSpec } from './image/output-spec.ts';
import type { OutputResult } from './engine/write-output.ts';

export type BuildProgress = DockerProgress | { kind: 'phase'; phase: 'resolve' | 'check' | 'build' | 'push' | 'write' | 'done'; message: string };

/** A structured log event; never holds a password or token. */
export interface BuildLogEvent {
  event: string;
  level: 'debug' | 'info' | 'warn';
  [field: string]: unknown;
}

export interface BuildFunctionOptions {
  /** Target `host[/namespace]`. Without it: the host and username of the docker config's only entry. */
  registry?: string;
  /**
   * `host[/namespace]` the cluster's nodes pull from when it is not where images are pushed
   * (kubeless-config `function-registry-pull`): `reference` and `pullImage` use it, with the same
   * digest; the existence check and the push still use `registry`.
   */
  pullRegistry?: string;
  /** Runtime catalog (parsed, or the runtime-images JSON / ConfigMap data); default: the upstream Kubeless runtimes. */
  catalog?: RuntimeCatalog | string | object;
  /** A parsed docker config, or the .dockerconfigjson / .dockercfg text or object. */
  dockerConfig?: DockerConfig | string | Buffer | object;
  /** Per-registry transport settings (tlsVerify, ca, insecure), by host. */
  registries?: RegistrySettings;
  /** false: build into the local daemon only (the minikube workflow); nothing is pushed. Default true. */
  push?: boolean;
  /** A Dockerode, or the environment to reach the daemon from (DOCKER_HOST, ...). Default process.env. */
  docker?: Dockerode | Record<string, string | undefined>;
  onProgress?: (event: BuildProgress) => void;
  /** Cancels the whole call: downloads, registry requests, the daemon's ping, build and push. */
  signal?: AbortSignal;
  /** Limit for the whole call, from the start (0: none). Default 30 minutes. */
  timeoutMs?: number;
  log?: (event: BuildLogEvent) => void;
  /** Extra labels on the built image; part of its tag, as they change the image. */
  labels?: Record<string, string>;
  /** `os/architecture[/variant]` the runtime images are chosen for; part of the tag. Default linux/amd64. */
  platform?: string;
  /** Time and size limits of a url source's download. */
  download?: DownloadOptions;
  /** Entry-count and size limits of archive sources. */
  limits?: Partial<ArchiveLimits>;
  /**
   * The tag the caller expects (the scheduler's, handed to the Job): when the inputs give another one
   * (a runtime image tag moved since), the call fails with E_TAG_MISMATCH before anything is built.
   */
  expectedTag?: string;
  /** `networkmode` of the build's RUN containers (e.g. "host" for a package mirror on loopback). */
  networkMode?: string;
  /**
   * 'docker' (default): `docker build` + `docker push` on the Docker Engine. 'registry': the image is
   * appended to the runtime image through the registry API; the Docker Engine only runs an install
   * or compile step, and only when no recorded deps layer or installedDir stands in for it.
   */
  engine?: BuildEngine;
  /**
   * engine 'registry': a directory that holds /kubeless after the install (and compile) phases, as the
   * daemonless Job's init containers leave it. Its content, less the function's own source files,
   * becomes the deps layer and nothing is run.
   */
  installedDir?: string;
  /** false: never run an install or compile step; when one is needed and no deps layer is recorded, E_INSTALL_REQUIRED. Default true. */
  runInstall?: boolean;
  /**
   * engine 'registry', runtime image that is an index, function without install/compile steps: the
   * platforms to build (default: every platform the index has). With such steps only `platform` is built.
   */
  platforms?: string[];
  /**
   * Write the image to `oci:DIR` (an OCI image layout) or `docker-archive:FILE` (for `docker load`)
   * instead of pushing it: the registry engine, nothing pushed, the registry only read for the runtime
   * image. Its base layers are kept in the blob cache, so the next build on that base downloads none.
   */
  output?: string | OutputSpec;
  /** Directory of the blob cache of `output`. Default: $FUNCTION_IMAGE_BUILDER_CACHE_DIR, $XDG_CACHE_HOME/function-image-builder or ~/.cache/function-image-builder. */
  cacheDir?: string;
}

export interface BuildTimings {
  resolveMs: number;
  checkMs: number;
  buildMs: number;
  pushMs: number;
  /** With `output`: writing it (fetching missing base layers into the cache included); else 0. */
  writeMs: number;
  totalMs: number;
}

export interface BuildResult {
  /** `namespace/name` of the Function. */
  function: string;
  /** `host/ns/fn:tag` */
  image: string;
  tag: string;
  /**
   * The pushed manifest's digest. With `push: false`: the local image ID (the daemon's own
   * identifier of the image, not a registry digest).
   */
  digest: string;
  /**
   * `host/ns/fn@sha256:...`, for a Deployment: on the pull registry when one is given. With
   * `push: false`: `image` (the tag is content-addressed).
   */
  reference: string;
  /** `image` under the pull registry's name; only when a pull registry gives another name. */
  pullImage?: string;
  /** The image already existed: nothing was built. */
  cached: boolean;
  /** The image was pushed by this call. */
  pushed: boolean;
  /** The Function names its own image (containers[0].image); nothing was built or checked. */
  prebuilt: boolean;
  timings: BuildTimings;
  /** engine 'registry': bytes sent to the target, mounted there from another repository, and found there already. */
  bytes?: ByteCounts;
  /**
   * With `output`: where the image was written, the digest of its manifest there (the OCI form in a
   * layout) and of its config (the image ID after `docker load`), and the base layer bytes downloaded
   * into the cache by this call, found there already, and made by the build.
   */
  output?: { format: OutputSpec['format']; path: string; manifestDigest: string; configDigest: string; bytes: OutputResult['bytes'] };
}

const DEFAULT_TIMEOUT_MS = 30 * 60_000;
/**
 * The end of the limit kept for cleanup (removing a failed step's container, the local tags):
 * the work is cancelled this much earlier (at most a quarter of the limit), so that cleanup too ends
 * by the limit even when the daemon freezes.
 */
const CLEANUP_RESERVE_MS = 5_000;
/** Cleanup after the caller's signal fired, when there is no limit to end it. */
const CLEANUP_AFTER_ABORT_MS = 10_000;
/** Pushes retried when a concurrent call of another process untagged the shared name in between. */
const PUSH_ATTEMPTS = 3;

/**
 * The inputs give another tag than the one the caller waits for: a runtime image given by tag moved,
 * or the catalog changed, between scheduling and building. Building it would push an image nobody
 * waits for; scheduling again computes the new tag.
 */
export class TagMismatchError extends BuilderError {
  constructor(fn: string, expected: string, actual: string, images: string[]) {
    super(
      'E_TAG_MISMATCH',
      'user',
      `function ${fn}: the build was scheduled for tag ${expected}, but its inputs now give ${actual} (a runtime image tag moved or the catalog changed since); nothing was built: schedule the build again`,
      { details: { function: fn, expectedTag: expected, tag: actual, images } },
    );
  }
}

/** Builds under way in this process, by target image. */
const inFlight = new Map<string, Promise<BuildResult>>();

export async function buildFunctionImage(fn: FunctionSpec | string | Buffer | object, options: BuildFunctionOptions = {}): Promise<BuildResult> {
  const started = Date.now();
  const timings: BuildTimings = { resolveMs: 0, checkMs: 0, buildMs: 0, pushMs: 0, writeMs: 0, totalMs: 0 };
  const log = options.log ?? (() => {});
  const progress = options.onProgress ?? (() => {});
  const spec = isFunctionSpec(fn) ? fn : parseFunction(fn);
  const id = functionId(spec);
  for (const warning of spec.warnings) log({ event: 'function-warning', level: 'warn', function: id, message: warning });

  if (spec.prebuiltImage && options.output !== undefined) {
    const given = typeof options.output === 'string' ? options.output : options.output.spec;
    throw new OutputSpecError(given, `function ${id} names its own image ${spec.prebuiltImage} (containers[0].image), so nothing is built to write; copy that image instead (e.g. skopeo copy docker://${spec.prebuiltImage} ${given})`);
  }
  if (spec.prebuiltImage) {
    log({ event: 'prebuilt', level: 'info', function: id, image: spec.prebuiltImage });
    const ref = parseReference(spec.prebuiltImage);
    timings.totalMs = Date.now() - started;
    return { function: id, image: spec.prebuiltImage, tag: ref.tag ?? '', digest: ref.digest ?? '', reference: spec.prebuiltImage, cached: true, pushed: false, prebuilt: true, timings };
  }

  // One limit for everything from here on, so no step (a hung download, registry or daemon) can outlast it.
  const limitMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const { signal: cancel, timedOut, clear: clearDeadline } = deadline(options.signal, limitMs - Math.min(CLEANUP_RESERVE_MS, Math.floor(limitMs / 4)));
  const cleanup = cleanupDeadline(options.signal, limitMs, CLEANUP_AFTER_ABORT_MS);
  // Whatever a step throws once the signal fired (an AbortError, the signal's reason, a download's
  // "aborted"), the caller gets E_BUILD_ABORTED or E_BUILD_TIMEOUT.
  const typed = async <T>(work: Promise<T>): Promise<T> => {
    try {
      return await work;
    } catch (error) {
      if (!cancel.aborted) throw error;
      const expected = timedOut() ? 'E_BUILD_TIMEOUT' : 'E_BUILD_ABORTED';
      if (error instanceof BuildAbortedError && error.code === expected) throw error;
      throw aborted(timedOut(), limitMs, `build of ${id}`, error);
    }
  };
  const platform = options.platform ?? DEFAULT_PLATFORM;
  const push = options.push ?? true;
  const output = options.output === undefined ? undefined : typeof options.output === 'string' ? parseOutputSpec(options.output) : options.output;
  // Checked before anything is resolved or built: a bad path costs nothing.
  if (output) checkOutputPath(output);
  if (output && (options.engine === 'docker' || options.push === false)) {
    throw new OutputSpecError(output.spec, `the image is written by the registry engine instead of being pushed; drop ${options.engine === 'docker' ? "engine: 'docker' (--engine docker)" : 'push: false (--no-push)'}`);
  }
  const engineName = output ? 'registry' : parseEngine(options.engine ?? 'docker', 'engine');
  const runInstall = options.runInstall ?? true;
  if (engineName === 'registry' && !push && !output) {
    throw new EngineError('E_ENGINE_OPTION', 'user', `function ${id}: the registry engine builds into a registry; for a local-only build (push: false, --no-push) use the docker engine`, { details: { field: 'engine' } });
  }
  if (engineName === 'docker' && options.installedDir !== undefined) {
    throw new EngineError('E_ENGINE_OPTION', 'user', `function ${id}: installedDir is read by the registry engine only; give engine: 'registry' with it`, { details: { field: 'installedDir' } });
  }
  const dockerConfig = options.dockerConfig === undefined || isDockerConfig(options.dockerConfig) ? options.dockerConfig : parseDockerConfig(options.dockerConfig);
  const catalog = options.catalog === undefined ? defaultRuntimeCatalog() : isCatalog(options.catalog) ? options.catalog : parseRuntimeCatalog(options.catalog);
  // An output needs no registry: without one the image is named kubeless.local/<function>:<tag>.
  const target = resolveTarget({ registry: options.registry, dockerConfig, functionName: spec.name, local: !push || output !== undefined });
  // A local image is run from the daemon that holds it, and an output is loaded where it is
  // written, so only pushed images get a pull name.
  const pullRepo = push && !output ? pullRepository(target, options.pullRegistry, spec.name) : target.repository;
  const pullNames = (tag: string) => (pullRepo === target.repository ? {} : { pullImage: `${pullRepo}:${tag}` });
  const clients = new Map<string, RegistryClient>();
  const registryLog = (event: RegistryLogEvent) => log({ ...event, function: id });
  const client = (host: string) => {
    let existing = clients.get(host);
    if (!existing) {
      existing = new RegistryClient({ registry: host, credentials: dockerConfig, transport: transportFor(options.registries, host), log: registryLog, signal: cancel });
      clients.set(host, existing);
    }
    return existing;
  };

  try {
    return await typed(run());
  } finally {
    clearDeadline();
    cleanup.dispose();
    await Promise.all([...clients.values()].map((c) => c.close()));
  }

  async function run(): Promise<BuildResult> {
    progress({ kind: 'phase', phase: 'resolve', message: `resolving ${id} (${spec.runtime})` });
    const plan = await resolveBuildPlan(spec, {
      catalog,
      signal: cancel,
      platform,
      ...(options.labels === undefined ? {} : { labels: options.labels }),
      ...(options.download === undefined ? {} : { download: options.download }),
      ...(options.limits === undefined ? {} : { limits: options.limits }),
      resolveImageDigest: async (image: string) => {
        const ref = parseReference(image);
        if (ref.digest) return image;
        const digest = await client(ref.registry).resolveDigest(ref.repository, ref.tag ?? 'latest', platform);
        log({ event: 'runtime-image-resolved', level: 'info', function: id, image, digest });
        return `${ref.name}@${digest}`;
      },
    });
    const tag = planIdentity(plan);
    if (options.expectedTag !== undefined && options.expectedTag !== tag) throw new TagMismatchError(id, options.expectedTag, tag, planImages(plan));
    for (const warning of plan.warnings) if (!spec.warnings.includes(warning)) log({ event: 'plan-warning', level: 'warn', function: id, message: warning });
    const image = `${target.repository}:${tag}`;
    const redact = functionEnvRedactor(spec, plan);
    timings.resolveMs = Date.now() - started;
    log({ event: 'identified', level: 'info', function: id, image, tag });

    let docker: Dockerode | undefined;
    let endpoint = 'the Docker Engine';
    const engine = async () => {
      if (!docker) {
        if (isDockerode(options.docker)) docker = options.docker;
        else {
          const env = options.docker ?? process.env;
          endpoint = dockerEndpointFromEnv(env).description;
          docker = await connectDocker(env, { signal: cancel });
        }
        log({ event: 'docker', level: 'info', function: id, endpoint });
      }
      return docker;
    };

    // What the registry engine needs, for a push and for an output alike.
    const appendOptions = {
      plan,
      tag,
      target,
      client,
      docker: async () => ({ docker: await engine(), endpoint }),
      engineAuth: (base: string) => {
        const host = parseReference(base).registry;
        const credential = resolveCredentials(dockerConfig, host);
        return credential ? engineAuth(credential, host) : undefined;
      },
      installedDir: options.installedDir,
      runInstall,
      networkMode: options.networkMode,
      redact,
      signal: cancel,
      log,
      progress,
    };

    if (output) {
      // No registry check: the output is written every time (the tag names the same bytes), its base
      // layers from the cache. A deps layer recorded in the target is reused when a registry was named.
      const built = await buildToOutput({ ...appendOptions, output, cache: new BlobCache(options.cacheDir ?? defaultCacheDir()), reuseRecordedDeps: target.host !== LOCAL_REGISTRY_HOST });
      timings.buildMs = built.buildMs;
      timings.writeMs = built.writeMs;
      timings.totalMs = Date.now() - started;
      const { format, path, manifestDigest, configDigest, bytes } = built.written;
      progress({ kind: 'phase', phase: 'done', message: `wrote ${image} to ${output.spec}` });
      return {
        function: id,
        image,
        tag,
        digest: manifestDigest,
        reference: image,
        cached: false,
        pushed: false,
        prebuilt: false,
        timings,
        output: { format, path, manifestDigest, configDigest, bytes },
      };
    }

    // Two builds of one image at once in this process become one build; the others join it.
    // (Across processes, the Kubernetes layer runs one Job per tag, and the HEAD before the push
    // lets a late builder take the image that is already there.)
    const produce = async (): Promise<BuildResult> => {
      // A pushed image is referred to by its registry digest; a local one by its content-addressed tag.
      const finish = (digest: string, cached: boolean, pushed: boolean): BuildResult => {
        timings.totalMs = Date.now() - started;
        return { function: id, image, tag, digest, reference: push ? `${pullRepo}@${digest}` : image, ...pullNames(tag), cached, pushed, prebuilt: false, timings };
      };
      const checkStarted = Date.now();
      progress({ kind: 'phase', phase: 'check', message: `checking ${image}` });
      if (push) {
        const existing = await client(target.host).manifestExists(target.path, tag);
        timings.checkMs = Date.now() - checkStarted;
        if (existing) {
          log({ event: 'cached', level: 'info', function: id, image, digest: existing.digest });
          progress({ kind: 'phase', phase: 'done', message: `${image} exists already` });
          return { ...finish(existing.digest, true, false), ...(engineName === 'registry' ? { bytes: emptyCounts() } : {}) };
        }
      } else {
        const local = await localImageId(await engine(), image, cancel);
        timings.checkMs = Date.now() - checkStarted;
        if (local) {
          log({ event: 'cached', level: 'info', function: id, image, imageId: local, local: true });
          progress({ kind: 'phase', phase: 'done', message: `${image} exists in the local daemon already` });
          return finish(local, true, false);
        }
      }

      if (!runInstall && engineName === 'docker' && (plan.phases.installation !== undefined || plan.phases.compilation !== undefined)) {
        throw new EngineError('E_INSTALL_REQUIRED', 'user', `function ${id} has an install or compile step, and runInstall is false; the docker engine runs that step in every build`, { details: { function: id } });
      }
      if (engineName === 'registry') {
        progress({ kind: 'phase', phase: 'build', message: `appending ${id} to ${plan.phases.runtime.image}` });
        const appended = await appendBuild({ ...appendOptions, platforms: options.platforms });
        timings.buildMs = appended.buildMs;
        timings.pushMs = appended.pushMs;
        if (appended.raced) {
          log({ event: 'cached', level: 'info', function: id, image, digest: appended.digest, note: 'pushed by a concurrent build' });
          return { ...finish(appended.digest, true, false), bytes: appended.bytes };
        }
        progress({ kind: 'phase', phase: 'done', message: `pushed ${target.repository}@${appended.digest}` });
        return { ...finish(appended.digest, false, true), bytes: appended.bytes };
      }

      const buildStarted = Date.now();
      const context = await createBuildContext(plan, { signal: cancel });
      const daemon = await engine();
      const registryAuths: Record<string, EngineAuth> = {};
      for (const host of new Set(planImages(plan).map((base) => parseReference(base).registry))) {
        const credential = resolveCredentials(dockerConfig, host);
        log({ event: 'credentials', level: 'info', function: id, registry: host, purpose: 'pull base image', key: credential?.key ?? null });
        if (credential) registryAuths[host] = engineAuth(credential, host);
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
          networkMode: options.networkMode,
          onProgress: progress,
          signal: cancel,
          cleanupSignal: cleanup.signal,
          onCleanupFailed: cleanupFailed,
          endpoint,
          redact,
        });
        imageId = result.imageId;
        timings.buildMs = Date.now() - buildStarted;
        log({ event: 'built', level: 'info', function: id, image, imageId, ms: timings.buildMs });
        if (!push) {
          progress({ kind: 'phase', phase: 'done', message: `built ${image} in the local daemon` });
          return finish(imageId, false, false);
        }

        const pushStarted = Date.now();
        // Another build of the same tag may have finished meanwhile; its image is as good as ours.
        const raced = await client(target.host).manifestExists(target.path, tag);
        if (raced) {
          timings.pushMs = Date.now() - pushStarted;
          log({ event: 'cached', level: 'info', function: id, image, digest: raced.digest, note: 'pushed by a concurrent build' });
          return finish(raced.digest, true, false);
        }
        const credential = resolveCredentials(dockerConfig, target.host);
        log({ event: 'credentials', level: 'info', function: id, registry: target.host, purpose: 'push', key: credential?.key ?? null });
        progress({ kind: 'phase', phase: 'push', message: `pushing ${image}` });
        let pushed;
        for (let attempt = 1; ; attempt++) {
          await tagImage(daemon, imageId, target.repository, tag, cancel, endpoint);
          try {
            pushed = await pushImage(daemon, {
              repository: target.repository,
              tag,
              auth: credential ? engineAuth(credential, target.host) : undefined,
              credentialKey: credential?.key,
              onProgress: progress,
              signal: cancel,
              endpoint,
            });
            break;
          } catch (error) {
            // A concurrent call (another process, same daemon) removed `image` between our tag and our push.
            const untagged = error instanceof PushFailedError && /does not exist locally/i.test(String(error.details.daemonMessage));
            if (!untagged || attempt >= PUSH_ATTEMPTS) throw error;
          }
        }
        timings.pushMs = Date.now() - pushStarted;
        log({ event: 'pushed', level: 'info', function: id, image, digest: pushed.digest, ms: timings.pushMs });
        progress({ kind: 'phase', phase: 'done', message: `pushed ${target.repository}@${pushed.digest}` });
        return finish(pushed.digest, false, true);
      } finally {
        // The registry holds the result; a failed push must not leave a tag that looks like a result either.
        if (push) {
          // `image` only while it still names this call's image: another process may have moved it to its own.
          let shared: string | undefined;
          await retryCleanup(async (signal) => (shared = await localImageId(daemon, image, signal)), cleanup.signal).catch((error: unknown) => cleanupFailed(image, error));
          if (shared !== undefined && shared === imageId) await removeImage(daemon, image, cleanup.signal).catch((error: unknown) => cleanupFailed(image, error));
          await removeImage(daemon, buildName, cleanup.signal).catch((error: unknown) => cleanupFailed(buildName, error));
        }
        // Without a push, a failed build tagged nothing; `image` could only be another call's result.
      }
    };
    const key = `${push ? 'push' : 'local'} ${image}`;
    for (;;) {
      const running = inFlight.get(key);
      if (!running) break;
      log({ event: 'joined', level: 'info', function: id, image });
      progress({ kind: 'phase', phase: 'check', message: `${image} is being built by another call; waiting for it` });
      try {
        const joined = await untilAborted(running, cancel);
        timings.totalMs = Date.now() - started;
        // The other call may name the pull registry differently; the digest is what it shares.
        const { pullImage: _theirs, ...shared } = joined;
        return { ...shared, reference: push ? `${pullRepo}@${joined.digest}` : joined.reference, ...pullNames(tag), cached: true, pushed: false, timings };
      } catch (error) {
        // The other call was cancelled by its own caller: this one still wants the image.
        if (!(error instanceof BuildAbortedError && error.code === 'E_BUILD_ABORTED') || options.signal?.aborted) throw error;
      }
    }
    // Typed here as well: the calls that join this one see the same error as its own caller.
    const produced = typed(produce());
    inFlight.set(key, produced);
    try {
      return await produced;
    } finally {
      inFlight.delete(key);
    }
  }
}

/** Hides the function's env values, as written and as the steps get them ($(VAR) expanded). */
function functionEnvRedactor(spec: FunctionSpec, plan: BuildPlan) {
  const values = spec.env.flatMap(({ name, value }) => [value, plan.phases.installation?.env[name], plan.phases.compilation?.env[name]]);
  return redactor(values.filter((value): value is string => value !== undefined));
}

/** `work`, or the signal's reason as soon as it fires: a call waiting for another one's build stays cancellable. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function isFunctionSpec(value: unknown): value is FunctionSpec {
  return typeof value === 'object' && value !== null && !Buffer.isBuffer(value) && 'handler' in value && typeof (value as FunctionSpec).handler === 'object' && 'contentType' in value;
}

function isDockerConfig(value: unknown): value is DockerConfig {
  return typeof value === 'object' && value !== null && Array.isArray((value as DockerConfig).entries) && typeof (value as DockerConfig).format === 'string';
}

function isCatalog(value: unknown): value is RuntimeCatalog {
  return typeof value === 'object' && value !== null && Array.isArray((value as RuntimeCatalog).runtimes);
}

function isDockerode(value: unknown): value is Dockerode {
  return typeof value === 'object' && value !== null && 'modem' in value;
}

export type { BuildTarget };
