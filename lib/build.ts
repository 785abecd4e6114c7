// buildFunctionImage(): the pipeline of DESIGN.md in one call.
//   prebuilt → resolve (runtime images to digests) → identify (tag) → one registry request
//   → tag exists: cached result, the Docker Engine is not even contacted
//   → else the engine: build (Docker Engine) → push → local tag removed, or append (registry API)
//   → { image, digest, reference, ... }
// buildResolvedImage() enters after the check, for a caller that resolved the plan and asked the
// registry itself (scheduleBuild).
// The steps' own concerns live in lib/build/: the time limit (deadline.ts), one build per image in
// a process (in-flight.ts), the registry clients per host (registry-clients.ts), and the two engines.
import type Dockerode from 'dockerode';
import { connectDocker, dockerEndpointFromEnv } from './docker/connect.ts';
import { localImageId } from './docker/push-image.ts';
import { functionId, type FunctionSpec } from './function/spec.ts';
import { parseReference } from './image/reference.ts';
import { parseDockerConfig, type DockerConfig } from './registry/credentials.ts';
import { parseRuntimeCatalog, type RuntimeCatalog } from './runtime/catalog.ts';
import { defaultRuntimeCatalog } from './runtime/default-catalog.ts';
import { DEFAULT_PLATFORM, resolveBuildPlan, type BuildPlan } from './image/plan.ts';
import { expectedPlanIdentity } from './image/identity.ts';
import { redactor } from './redact.ts';
import { pullNames, pullRepository, resolveTarget, type BuildTarget } from './target.ts';
import { emptyCounts } from './engine/copy-blobs.ts';
import { EngineError, parseEngine, type BuildEngine } from './engine/errors.ts';
import { checkOutputPath, OutputSpecError, parseOutputSpec, type OutputSpec } from './image/output-spec.ts';
import { buildDeadline, type BuildDeadline } from './build/deadline.ts';
import { sharedBuild } from './build/in-flight.ts';
import { RegistryClients } from './build/registry-clients.ts';
import { buildOnDocker } from './build/docker-engine.ts';
import { appendOnRegistry, writeOutput } from './build/registry-engine.ts';
import type { BuildFunctionOptions, BuildResult, BuildTimings, EngineOutcome, IdentifiedBuild } from './build/types.ts';

export type { BuildFunctionOptions, BuildLogEvent, BuildProgress, BuildResult, BuildTimings } from './build/types.ts';

/** Builds (or finds) the image of a parsed Function; parse it with parseFunction() or parseFunctions(). */
export function buildFunctionImage(spec: FunctionSpec, options: BuildFunctionOptions = {}): Promise<BuildResult> {
  return buildImage(spec, options, undefined);
}

/** What a plan resolved already fixed, and what a build of it that is known to be missing cannot take. */
export type ResolvedBuildOptions = Omit<BuildFunctionOptions, 'catalog' | 'labels' | 'platform' | 'download' | 'limits' | 'expectedTag' | 'push' | 'output' | 'cacheDir'>;

/**
 * Builds and pushes the image of a plan the caller resolved, whose tag it has just found missing
 * from the target registry (scheduleBuild, before it builds here): the plan's runtime images and
 * source are used as resolved (a url source is not downloaded again) and the tag is not asked about
 * again. A concurrent build of the same tag is still joined, and one that pushed first still wins.
 */
export function buildResolvedImage(plan: BuildPlan, options: ResolvedBuildOptions = {}): Promise<BuildResult> {
  return buildImage(plan.function, options, plan);
}

/** `resolved`: the plan of a tag known to be missing, so neither the resolution nor the check is done. */
async function buildImage(spec: FunctionSpec, options: BuildFunctionOptions, resolved: BuildPlan | undefined): Promise<BuildResult> {
  const started = Date.now();
  const timings: BuildTimings = { resolveMs: 0, checkMs: 0, buildMs: 0, pushMs: 0, writeMs: 0, totalMs: 0 };
  const log = options.log ?? (() => {});
  const progress = options.onProgress ?? (() => {});
  const id = functionId(spec);
  for (const warning of spec.warnings) log({ event: 'function-warning', level: 'warn', function: id, message: warning });

  if (spec.prebuiltImage) return prebuiltResult(spec.prebuiltImage, id, options, log, timings, started);

  const settings = callSettings(spec, id, options);
  const { push, output, engineName, dockerConfig, target, pullRepo } = settings;
  // One limit for everything from here on, so no step (a hung download, registry or daemon) can outlast it.
  const limit = buildDeadline(options.signal, options.timeoutMs, `build of ${id}`);
  const clients = new RegistryClients({ dockerConfig, registries: options.registries, log: (event) => log({ ...event, function: id }), signal: limit.signal });
  const result = (build: IdentifiedBuild, outcome: Pick<EngineOutcome, 'digest' | 'cached' | 'pushed' | 'bytes'>): BuildResult => {
    timings.totalMs = Date.now() - started;
    const { image, tag } = build;
    // A pushed image is referred to by its registry digest; a local one by its content-addressed tag.
    const reference = push ? `${pullRepo}@${outcome.digest}` : image;
    return { function: id, image, tag, digest: outcome.digest, reference, ...pullNames(target, pullRepo, tag), cached: outcome.cached, pushed: outcome.pushed, prebuilt: false, timings, ...(outcome.bytes ? { bytes: outcome.bytes } : {}) };
  };

  try {
    return await limit.typed(run());
  } finally {
    limit.dispose();
  }

  async function run(): Promise<BuildResult> {
    const build = await identify(spec, id, options, settings, { limit, clients, log, progress }, resolved);
    timings.resolveMs = Date.now() - started;
    const { image, tag } = build;

    if (output) {
      const built = await writeOutput(build, { output, cacheDir: options.cacheDir, installedDir: options.installedDir, runInstall: settings.runInstall });
      timings.buildMs = built.buildMs;
      timings.writeMs = built.writeMs;
      timings.totalMs = Date.now() - started;
      const { format, path, manifestDigest, configDigest, bytes } = built.written;
      return { function: id, image, tag, digest: manifestDigest, reference: image, cached: false, pushed: false, prebuilt: false, timings, output: { format, path, manifestDigest, configDigest, bytes } };
    }

    const produce = async (): Promise<BuildResult> => {
      const checkStarted = Date.now();
      const existing = resolved === undefined ? await check(build, push) : undefined;
      timings.checkMs = Date.now() - checkStarted;
      if (existing) return result(build, { digest: existing, cached: true, pushed: false, ...(push && engineName === 'registry' ? { bytes: emptyCounts() } : {}) });
      const outcome = engineName === 'registry'
        ? await appendOnRegistry(build, { installedDir: options.installedDir, runInstall: settings.runInstall, platforms: options.platforms })
        : await buildOnDocker(build, { push, runInstall: settings.runInstall });
      timings.buildMs = outcome.buildMs;
      timings.pushMs = outcome.pushMs;
      return result(build, outcome);
    };
    // Two builds of one image at once in this process become one build; the others join it.
    // Typed here as well: the calls that join this one see the same error as its own caller.
    return sharedBuild(`${push ? 'push' : 'local'} ${image}`, () => limit.typed(produce()), {
      signal: limit.signal,
      callerSignal: options.signal,
      onJoin: () => {
        log({ event: 'joined', level: 'info', function: id, image });
        progress({ kind: 'phase', phase: 'check', message: `${image} is being built by another call; waiting for it` });
      },
      // The other call shares its digest (and what it moved); names are this call's own: its
      // Function, its pull registry.
      joined: (theirs) => result(build, { digest: theirs.digest, cached: true, pushed: false, ...(theirs.bytes ? { bytes: theirs.bytes } : {}) }),
    });
  }
}

/** The result for a Function that names its own image: nothing is built or checked. */
function prebuiltResult(prebuiltImage: string, id: string, options: BuildFunctionOptions, log: NonNullable<BuildFunctionOptions['log']>, timings: BuildTimings, started: number): BuildResult {
  if (options.output !== undefined) {
    const given = typeof options.output === 'string' ? options.output : options.output.spec;
    throw new OutputSpecError(given, `function ${id} names its own image ${prebuiltImage} (containers[0].image), so nothing is built to write; copy that image instead (e.g. skopeo copy docker://${prebuiltImage} ${given})`);
  }
  log({ event: 'prebuilt', level: 'info', function: id, image: prebuiltImage });
  const ref = parseReference(prebuiltImage);
  timings.totalMs = Date.now() - started;
  return { function: id, image: prebuiltImage, tag: ref.tag ?? '', digest: ref.digest ?? '', reference: prebuiltImage, cached: true, pushed: false, prebuilt: true, timings };
}

interface CallSettings {
  push: boolean;
  output: OutputSpec | undefined;
  engineName: BuildEngine;
  runInstall: boolean;
  platform: string;
  dockerConfig: DockerConfig | undefined;
  target: BuildTarget;
  /** The repository the cluster pulls from: the pull registry's name for `target`, or `target`'s own. */
  pullRepo: string;
}

/** The call's options checked against each other and parsed, before anything is resolved or built. */
function callSettings(spec: FunctionSpec, id: string, options: BuildFunctionOptions): CallSettings {
  const push = options.push ?? true;
  const output = options.output === undefined ? undefined : typeof options.output === 'string' ? parseOutputSpec(options.output) : options.output;
  // Checked before anything is resolved or built: a bad path costs nothing.
  if (output) checkOutputPath(output);
  if (output && (options.engine === 'docker' || options.push === false)) {
    throw new OutputSpecError(output.spec, `the image is written by the registry engine instead of being pushed; drop ${options.engine === 'docker' ? "engine: 'docker' (--engine docker)" : 'push: false (--no-push)'}`);
  }
  const engineName = output ? 'registry' : parseEngine(options.engine ?? 'docker', 'engine');
  if (engineName === 'registry' && !push && !output) {
    throw new EngineError('E_ENGINE_OPTION', 'user', `function ${id}: the registry engine builds into a registry; for a local-only build (push: false, --no-push) use the docker engine`, { details: { field: 'engine' } });
  }
  if (engineName === 'docker' && options.installedDir !== undefined) {
    throw new EngineError('E_ENGINE_OPTION', 'user', `function ${id}: installedDir is read by the registry engine only; give engine: 'registry' with it`, { details: { field: 'installedDir' } });
  }
  const dockerConfig = options.dockerConfig === undefined || isDockerConfig(options.dockerConfig) ? options.dockerConfig : parseDockerConfig(options.dockerConfig);
  // An output needs no registry: without one the image is named kubeless.local/<function>:<tag>.
  const target = resolveTarget({ registry: options.registry, dockerConfig, functionName: spec.name, local: !push || output !== undefined });
  // A local image is run from the daemon that holds it, and an output is loaded where it is
  // written, so only pushed images get a pull name.
  const pullRepo = push && !output ? pullRepository(target, options.pullRegistry) : target.repository;
  return { push, output, engineName, runInstall: options.runInstall ?? true, platform: options.platform ?? DEFAULT_PLATFORM, dockerConfig, target, pullRepo };
}

/** What one call shares between its steps. */
interface CallContext {
  limit: BuildDeadline;
  clients: RegistryClients;
  log: IdentifiedBuild['log'];
  progress: IdentifiedBuild['progress'];
}

/**
 * Resolves the plan (unless the caller did), computes the tag and holds it to the expected one, and
 * gathers what the engines need.
 */
async function identify(
  spec: FunctionSpec,
  id: string,
  options: BuildFunctionOptions,
  settings: CallSettings,
  call: CallContext,
  resolved: BuildPlan | undefined,
): Promise<IdentifiedBuild> {
  const { limit, clients, log, progress } = call;
  const { target } = settings;
  const plan = resolved ?? (await resolve(spec, id, options, settings, call));
  const tag = expectedPlanIdentity(plan, options.expectedTag);
  for (const warning of plan.warnings) if (!spec.warnings.includes(warning)) log({ event: 'plan-warning', level: 'warn', function: id, message: warning });
  const image = `${target.repository}:${tag}`;
  log({ event: 'identified', level: 'info', function: id, image, tag });
  return {
    id,
    plan,
    tag,
    image,
    target,
    dockerConfig: settings.dockerConfig,
    networkMode: options.networkMode,
    redact: functionEnvRedactor(spec, plan),
    signal: limit.signal,
    cleanupSignal: limit.cleanupSignal,
    clients,
    docker: dockerConnection(options.docker, id, limit.signal, log),
    log,
    progress,
  };
}

/** The Function against the catalog: runtime images pinned to digests (through the call's clients), the source read. */
async function resolve(spec: FunctionSpec, id: string, options: BuildFunctionOptions, settings: CallSettings, call: CallContext): Promise<BuildPlan> {
  const { limit, clients, log, progress } = call;
  const { platform } = settings;
  progress({ kind: 'phase', phase: 'resolve', message: `resolving ${id} (${spec.runtime})` });
  // Parsed here, not with the other settings: a plan handed in (buildResolvedImage) has its runtime already.
  const catalog = options.catalog === undefined ? defaultRuntimeCatalog() : isCatalog(options.catalog) ? options.catalog : parseRuntimeCatalog(options.catalog);
  return resolveBuildPlan(spec, {
    catalog,
    signal: limit.signal,
    platform,
    ...(options.labels === undefined ? {} : { labels: options.labels }),
    ...(options.download === undefined ? {} : { download: options.download }),
    ...(options.limits === undefined ? {} : { limits: options.limits }),
    resolveImageDigest: async (image: string) => {
      const ref = parseReference(image);
      if (ref.digest) return image;
      const digest = await clients.for(ref.registry).resolveDigest(ref.repository, ref.tag ?? 'latest', platform);
      log({ event: 'runtime-image-resolved', level: 'info', function: id, image, digest });
      return `${ref.name}@${digest}`;
    },
  });
}

/**
 * Whether the image is there already: in the target registry (one request) when pushing, in the
 * local daemon otherwise. Its digest (the local image ID without a push), or undefined.
 */
async function check(build: IdentifiedBuild, push: boolean): Promise<string | undefined> {
  const { id, image, target, log, progress } = build;
  progress({ kind: 'phase', phase: 'check', message: `checking ${image}` });
  if (push) {
    const existing = await build.clients.for(target.host).manifestExists(target.path, build.tag);
    if (!existing) return undefined;
    log({ event: 'cached', level: 'info', function: id, image, digest: existing.digest });
    progress({ kind: 'phase', phase: 'done', message: `${image} exists already` });
    return existing.digest;
  }
  const local = await localImageId((await build.docker()).docker, image, build.signal);
  if (!local) return undefined;
  log({ event: 'cached', level: 'info', function: id, image, imageId: local, local: true });
  progress({ kind: 'phase', phase: 'done', message: `${image} exists in the local daemon already` });
  return local;
}

/** The Docker Engine given (a Dockerode) or reached from the environment, connected on first use only. */
function dockerConnection(given: BuildFunctionOptions['docker'], id: string, signal: AbortSignal, log: IdentifiedBuild['log']): IdentifiedBuild['docker'] {
  let connected: { docker: Dockerode; endpoint: string } | undefined;
  return async () => {
    if (!connected) {
      if (isDockerode(given)) connected = { docker: given, endpoint: 'the Docker Engine' };
      else {
        const env = given ?? process.env;
        const endpoint = dockerEndpointFromEnv(env).description;
        connected = { docker: await connectDocker(env, { signal }), endpoint };
      }
      log({ event: 'docker', level: 'info', function: id, endpoint: connected.endpoint });
    }
    return connected;
  };
}

/** Hides the function's env values, as written and as the steps get them ($(VAR) expanded). */
function functionEnvRedactor(spec: FunctionSpec, plan: BuildPlan) {
  const values = spec.env.flatMap(({ name, value }) => [value, plan.phases.installation?.env[name], plan.phases.compilation?.env[name]]);
  return redactor(values.filter((value): value is string => value !== undefined));
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
