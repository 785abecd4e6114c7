// The registry engine: makes the function image through the registry API alone. The runtime image's
// manifest and config are read (never its layers), the deps layer (when there are deps) and the code
// layer are appended, and the blobs are put into the target with as few bytes moved as possible
// (copy-blobs.ts); the manifest goes last, under the tag. A runtime image that is an index gives an
// index of function images, one per platform, when no install step ties the build to one platform.
import type Dockerode from 'dockerode';
import type { EngineAuth } from '../docker/auth.ts';
import type { BuildLog, BuildProgress } from '../build/types.ts';
import type { MaterialisedSource } from '../function/source.ts';
import { functionId } from '../function/spec.ts';
import { imageLabels } from '../image/dockerfile.ts';
import { planHasSteps, type BuildPlan } from '../image/plan.ts';
import { parseReference } from '../image/reference.ts';
import type { RegistryClient } from '../registry/client.ts';
import { parsePlatform, type Descriptor } from '../registry/manifest.ts';
import type { BuildTarget } from '../target.ts';
import { assembleImage, memoryLayer, type AppendLayer, type AssembledImage } from './assemble.ts';
import { readBaseImages, type BaseImage } from './base.ts';
import { mirrorBases } from './mirror-base.ts';
import { addCounts, copyBlobs, forgetSeenBlobs, type ByteCounts } from './copy-blobs.ts';
import { RegistryError } from '../registry/errors.ts';
import { DEPS_LAYER_HISTORY, depsKey, findDepsLayer, recordDepsLayer } from './deps.ts';
import { EngineError } from './errors.ts';
import { installOnDocker } from './install.ts';
import { codeLayerEntries, directoryEntries, VOLUME_ENTRY } from './kubeless-layers.ts';
import type { LayerEntry } from '../image/tar.ts';
import { buildLayer } from './layer.ts';
import { imageIndex } from './manifest.ts';
import type { Redactor } from '../redact.ts';
import { openUploadSessions, type UploadSessions } from './upload-sessions.ts';

const CODE_LAYER_HISTORY = 'function-image-builder: code /kubeless';

export interface AppendBuildOptions {
  plan: BuildPlan;
  tag: string;
  target: BuildTarget;
  /** A registry client per host (base registries and the target). */
  client: (host: string) => RegistryClient;
  /** The Docker Engine for a local install step; rejects when none answers. */
  docker: () => Promise<{ docker: Dockerode; endpoint: string }>;
  /** Engine credentials of a phase image (for the daemon's pull of the installation image). */
  engineAuth: (image: string) => EngineAuth | undefined;
  /** A directory holding /kubeless after the install (and compile) phases: nothing is run. */
  installedDir?: string | undefined;
  /** false: never run an install/compile step; E_INSTALL_REQUIRED when one would be needed. */
  runInstall: boolean;
  /** Platforms of a multi-platform runtime image to build (default: all it has, when there are no deps). */
  platforms?: string[] | undefined;
  networkMode?: string | undefined;
  /** false: do not look for a recorded deps layer in the target (an output without a registry has none). Default true. */
  reuseRecordedDeps?: boolean | undefined;
  /** Hides the function's env values in the install step's output. */
  redact?: Redactor | undefined;
  signal: AbortSignal;
  /** Bounds the removal of the install step's container, a little later than `signal`. */
  cleanupSignal?: AbortSignal | undefined;
  log: BuildLog;
  progress: (event: BuildProgress) => void;
}

export interface AppendBuildResult {
  digest: string;
  bytes: ByteCounts;
  buildMs: number;
  pushMs: number;
  /** Another build pushed the tag meanwhile; digest is theirs and nothing was pushed. */
  raced: boolean;
}

/** Makes the function images (one per platform) without pushing anything but new deps blobs' records. */
export async function assembleFunctionImages(options: AppendBuildOptions): Promise<{ images: AssembledImage[]; bases: BaseImage[]; index?: 'docker' | 'oci'; reproducible: boolean; afterPush: () => Promise<void> }> {
  const { plan, tag, target, signal, log } = options;
  const fn = functionId(plan.function);
  const source = await plan.materialise(signal);
  const runtimeImage = plan.phases.runtime.image;
  const steps = planHasSteps(plan);
  const exclude = new Set(source.files.map((file) => file.path));
  // Independent reads and work at once: the base's manifest and config, the deps layer, the code layer.
  const [bases, deps, code] = await Promise.all([
    readBaseImages(options.client(parseReference(runtimeImage).registry), runtimeImage, plan.platform, steps ? undefined : (options.platforms ?? 'all')),
    depsLayer(options, source, exclude),
    buildLayer(codeLayerEntries(plan, source)).then((layer) => memoryLayer(layer, CODE_LAYER_HISTORY)),
  ]);
  if (bases.index && steps && bases.index.platforms.length > 1) {
    log({ event: 'single-platform', level: 'warn', function: fn, platform: plan.platform, available: bases.index.platforms,
      message: `the runtime image offers ${bases.index.platforms.join(', ')}; the function has an install or compile step, which runs for one platform, so only ${plan.platform} is built` });
  }

  const layers = [...(deps ? [deps.layer] : []), code];
  const changes = { env: plan.phases.runtime.env, labels: imageLabels(plan, tag) };
  const images = bases.images.map((base) => assembleImage(base, layers, changes));
  const afterPush = async () => {
    if (!deps?.record) return;
    // The image is pushed either way; a deps record that fails only costs a later install.
    await recordDepsLayer(options.client(target.host), target.path, deps.record, deps.layer, plan.platform).then(
      () => log({ event: 'deps-recorded', level: 'info', function: fn, key: deps.record, layer: deps.layer.digest }),
      (error: unknown) => log({ event: 'deps-record-failed', level: 'warn', function: fn, message: String(error) }),
    );
  };
  // Installed deps are new bytes every time they are installed; everything else is made the same way
  // by every build of this tag that reads the same deps record (deterministic code layer and config).
  const reproducible = deps?.record === undefined;
  return { images, bases: bases.images, ...(bases.index && images.length > 1 ? { index: bases.index.family } : {}), reproducible, afterPush };
}

/** The deps layer: from installedDir, from the target's record, or from an install run on the Docker Engine. */
async function depsLayer(options: AppendBuildOptions, source: MaterialisedSource, exclude: ReadonlySet<string>): Promise<{ layer: AppendLayer; record?: string } | undefined> {
  const { plan, target, log } = options;
  const fn = functionId(plan.function);
  const key = depsKey(plan, source);
  if (key === undefined) return undefined;
  const fromEntries = async (entries: LayerEntry[]) => memoryLayer(await buildLayer(entries), DEPS_LAYER_HISTORY);
  if (options.installedDir !== undefined) {
    log({ event: 'deps-from-dir', level: 'info', function: fn, dir: options.installedDir, key });
    return { layer: await fromEntries(await directoryEntries(options.installedDir, exclude)), record: key };
  }
  const recorded = options.reuseRecordedDeps === false ? undefined : await findDepsLayer(options.client(target.host), target.path, key);
  if (recorded) {
    log({ event: 'deps-reused', level: 'info', function: fn, key, layer: recorded.digest });
    return { layer: recorded };
  }
  const what = plan.phases.compilation !== undefined ? 'a compile step' : `deps (${plan.runtime.depName}) to install`;
  if (!options.runInstall) {
    throw new EngineError('E_INSTALL_REQUIRED', 'user', `function ${fn} has ${what} and no installed deps layer is recorded in ${target.repository} (tag deps-${key.slice(0, 12)}...); run the build with the install allowed (a Job, or runInstall: true)`, {
      details: { function: fn, depsKey: key },
    });
  }
  let daemon: { docker: Dockerode; endpoint: string };
  try {
    daemon = await options.docker();
  } catch (error) {
    throw new EngineError(
      'E_INSTALL_NO_DOCKER',
      'infrastructure',
      `function ${fn} has ${what}: the registry engine runs that step in a container of the ${plan.phases.installation ? 'installation' : 'compilation'} image on a Docker Engine, and none answers (${(error as Error).message.replace(/\.$/, '')}). Start Docker or set DOCKER_HOST, build with --engine docker, or build in the cluster with the daemonless Job, which runs the step in an init container.`,
      { cause: error, details: { function: fn, engine: 'registry' } },
    );
  }
  options.progress({ kind: 'phase', phase: 'build', message: `installing ${plan.runtime.depName} for ${fn} on ${daemon.endpoint}` });
  const entries = await installOnDocker(daemon.docker, plan, source, {
    auth: options.engineAuth,
    networkMode: options.networkMode,
    onProgress: options.progress,
    signal: options.signal,
    cleanupSignal: options.cleanupSignal,
    endpoint: daemon.endpoint,
    redact: options.redact,
    log: (event) => log({ ...event, function: fn }),
  });
  // The compile step's /kubeless holds the function's own files too: the code layer carries them.
  return { layer: await fromEntries(entries.filter((entry) => !exclude.has(entry.name.slice(VOLUME_ENTRY.length + 1)))), record: key };
}

/** Assembles, copies the blobs and pushes the manifest(s); the tag goes last. */
export async function appendBuild(options: AppendBuildOptions): Promise<AppendBuildResult> {
  const { target, log } = options;
  // The code layer and the config are new blobs in (nearly) every build: their upload sessions are
  // opened while the image is assembled. Only after the tag's HEAD missed, so a redeploy stays one request.
  const sessions = openUploadSessions(options.client(target.host), target.path, 2, log);
  try {
    return await appendAndPush(options, sessions);
  } finally {
    await sessions.release();
  }
}

async function appendAndPush(options: AppendBuildOptions, sessions: UploadSessions): Promise<AppendBuildResult> {
  const { target, tag, log } = options;
  const buildStarted = Date.now();
  const { images, bases, index, reproducible, afterPush } = await assembleFunctionImages(options);
  const buildMs = Date.now() - buildStarted;
  const pushStarted = Date.now();
  const client = options.client(target.host);
  const copying = {
    sessions,
    target: client,
    source: options.client,
    signal: options.signal,
    log,
    onBlob: (descriptor: Descriptor, outcome: string) => options.progress({ kind: 'push', layer: descriptor.digest.slice(7, 19), status: outcome, current: descriptor.size, total: descriptor.size }),
  };
  options.progress({ kind: 'phase', phase: 'push', message: `pushing ${target.repository}:${tag}` });
  const mirrored = await mirrorBases(images, bases, { ...copying, targetPath: target.path });
  const blobs = images.flatMap((image) => [...image.layers, image.config]);
  const copyAll = (verify: boolean) => copyBlobs(blobs, { ...copying, repository: target.path, verify });
  // Another build of the same tag may finish meanwhile. An image with freshly installed deps differs
  // from theirs, so the tag is asked about beside the blob copy and their image stays the tag's. An
  // image without them is the one every build that found the same deps record makes: putting it
  // again moves nothing, and the question would cost the registry a request before the manifest.
  // (Only a race with a build that installed the same deps anew moves the tag, once, between two
  // images that both work.)
  const [raced, copied] = await Promise.all([reproducible ? undefined : client.manifestExists(target.path, tag), copyAll(false)]);
  let bytes = addCounts(mirrored, copied);
  if (raced) return { digest: raced.digest, bytes, buildMs, pushMs: Date.now() - pushStarted, raced: true };
  const putManifests = async (): Promise<string> => {
    if (index === undefined) {
      const image = images[0] as AssembledImage;
      return (await client.putManifest(target.path, tag, image.manifest.bytes, image.manifest.mediaType)).digest;
    }
    const entries: Descriptor[] = [];
    for (const image of images) {
      await client.putManifest(target.path, image.manifest.digest, image.manifest.bytes, image.manifest.mediaType);
      entries.push({ mediaType: image.manifest.mediaType, digest: image.manifest.digest, size: image.manifest.bytes.length, platform: parsePlatform(image.platform) });
    }
    const list = imageIndex(index, entries);
    return (await client.putManifest(target.path, tag, list.bytes, list.mediaType)).digest;
  };
  let digest: string;
  try {
    digest = await putManifests();
  } catch (error) {
    // A blob taken as present without asking is gone (garbage collected since): ask about every one.
    if (!namesMissingBlob(error)) throw error;
    log({ event: 'blob-missing', level: 'warn', image: `${target.repository}:${tag}`, message: (error as Error).message });
    forgetSeenBlobs(client.registry, target.path);
    bytes = addCounts(mirrored, await copyAll(true));
    digest = await putManifests();
  }
  await afterPush();
  log({ event: 'appended', level: 'info', image: `${target.repository}:${tag}`, digest, bytes });
  return { digest, bytes, buildMs, pushMs: Date.now() - pushStarted, raced: false };
}

/** The registry refused a manifest because a blob it names is not in the repository. */
function namesMissingBlob(error: unknown): boolean {
  return error instanceof RegistryError && error.registryErrors.some((entry) => entry.code === 'MANIFEST_BLOB_UNKNOWN' || entry.code === 'BLOB_UNKNOWN');
}
