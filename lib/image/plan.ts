// Resolves a Function against the runtime catalog into everything the image depends on: the
// phases that take part (images pinned by digest, commands, expanded env), the env of each build
// step, and the source — read now when its identity needs the bytes, or left for materialise()
// when a url source carries a checksum (the checksum identifies it without a download).
import { BuilderError } from '../errors.ts';
import type { ArchiveLimits } from '../function/archive/limits.ts';
import type { DownloadOptions } from '../function/download.ts';
import { parseFunction } from '../function/parse.ts';
import { materialiseSources, type MaterialisedSource } from '../function/source.ts';
import { functionId, type FunctionSpec } from '../function/spec.ts';
import { formatPlatform, parsePlatform } from '../registry/manifest.ts';
import { findRuntime, type ResolvedRuntime, type RuntimeCatalog, type RuntimePhase } from '../runtime/catalog.ts';
import { defaultRuntimeCatalog } from '../runtime/default-catalog.ts';
import { expandEnv } from '../runtime/expand.ts';
import { INSTALL_VOLUME } from './install-volume.ts';
import { parseReference } from './reference.ts';

export { INSTALL_VOLUME };
/** The user Kubeless runtime images run as; /kubeless belongs to it. */
export const FUNCTION_UID = 1000;
const FUNCTION_PORT = '8080';
/** What the Kubeless runtime images are built for, and what a cluster without a word otherwise runs. */
export const DEFAULT_PLATFORM = 'linux/amd64';

/** Turns an image reference given by tag into the same image by digest: "name@sha256:...". */
export type ImageDigestResolver = (image: string) => Promise<string>;

export interface ResolvePlanOptions {
  /** Default: the upstream Kubeless runtimes. */
  catalog?: RuntimeCatalog;
  /** Needed for every catalog image that is not pinned by digest. */
  resolveImageDigest?: ImageDigestResolver;
  download?: DownloadOptions;
  limits?: Partial<ArchiveLimits>;
  signal?: AbortSignal;
  /**
   * `os/architecture[/variant]` the image is for (default linux/amd64). resolveImageDigest must pick
   * the runtime images for the same platform; it is part of the tag, as it changes the image.
   */
  platform?: string;
  /** Extra labels on the image. They change the image, so they are part of its tag. */
  labels?: Record<string, string>;
}

export interface PlanPhase {
  /** Pinned: "registry/repository@sha256:...", what the Dockerfile's FROM names. */
  image: string;
  /** As the catalog wrote it. */
  catalogImage: string;
  command?: string;
  /** The full env the step runs with (runtime phase: the image's ENV), in order. */
  env: Record<string, string>;
}

export type PlanSource =
  | { kind: 'files'; source: MaterialisedSource }
  /** A url source with a checksum: identified by it, downloaded only by materialise(). */
  | { kind: 'url'; checksum: string };

export interface BuildPlan {
  function: FunctionSpec;
  runtime: ResolvedRuntime;
  /** Only the phases that take part: installation when there are deps to install, compilation when it has a command. */
  phases: { installation?: PlanPhase; compilation?: PlanPhase; runtime: PlanPhase };
  source: PlanSource;
  /** Normalised `os/architecture[/variant]`. */
  platform: string;
  /** The caller's extra labels. */
  labels: Record<string, string>;
  warnings: string[];
  /** The files and deps file; downloads a url source with a checksum on first call. */
  materialise(signal?: AbortSignal): Promise<MaterialisedSource>;
}

/** An installation or compilation step runs: the build needs a container of a phase image, not just the runtime image. */
export function planHasSteps(plan: BuildPlan): boolean {
  return plan.phases.installation !== undefined || plan.phases.compilation !== undefined;
}

/** Every base image the Dockerfile pulls, pinned by digest, without repeats. */
export function planImages(plan: BuildPlan): string[] {
  const { installation, compilation, runtime } = plan.phases;
  return [...new Set([installation?.image, compilation?.image, runtime.image].filter((image): image is string => image !== undefined))];
}

export async function resolveBuildPlan(input: FunctionSpec | string | Buffer | object, options: ResolvePlanOptions = {}): Promise<BuildPlan> {
  const spec = isFunctionSpec(input) ? input : parseFunction(input);
  const fn = functionId(spec);
  if (spec.prebuiltImage !== undefined) {
    throw new BuilderError('E_FUNCTION_PREBUILT', 'user', `function ${fn} runs the prebuilt image ${spec.prebuiltImage} (spec.deployment.spec.template.spec.containers[0].image) and is not built`, {
      details: { function: fn, image: spec.prebuiltImage },
    });
  }
  let platform: string;
  try {
    platform = formatPlatform(parsePlatform(options.platform ?? DEFAULT_PLATFORM));
  } catch (error) {
    throw new BuilderError('E_PLATFORM_INVALID', 'user', `platform ${JSON.stringify(options.platform)}: must be os/architecture[/variant], e.g. linux/amd64 or linux/arm64`, {
      cause: error,
      details: { field: 'platform', platform: options.platform },
    });
  }
  const catalog = options.catalog ?? defaultRuntimeCatalog();
  const runtime = findRuntime(catalog, spec.runtime, fn);
  const warnings = [...spec.warnings];
  const hasDeps = spec.deps !== undefined || spec.contentType.depsIncluded;
  if (hasDeps && runtime.depName === '') {
    throw new BuilderError('E_FUNCTION_INVALID', 'user', `function ${fn}: spec.deps: runtime ${spec.runtime} has no dependency file, so a Function of it cannot have deps`, {
      details: { function: fn, field: 'spec.deps' },
    });
  }

  const pins = new Map<string, Promise<string>>();
  const pin = (image: string): Promise<string> => {
    let pinned = pins.get(image);
    if (pinned === undefined) {
      pinned = pinImage(image, fn, options.resolveImageDigest);
      pins.set(image, pinned);
    }
    return pinned;
  };

  const depsFile = `${INSTALL_VOLUME}/${runtime.depName}`;
  const base: Record<string, string> = { KUBELESS_INSTALL_VOLUME: INSTALL_VOLUME, KUBELESS_DEPS_FILE: depsFile };
  for (const { name } of spec.env) {
    if (name in base) warnings.push(`the function's env ${name} is replaced by the builder's own value during the build`);
  }
  const stepEnv = (phase: RuntimePhase, extra: Record<string, string> = {}): Record<string, string> => {
    const phaseEnv = expandEnv(phase.env, base);
    const functionEnv = expandEnv(spec.env.map(({ name, value }) => [name, value] as [string, string]), { ...base, ...phaseEnv });
    // The builder's variables come last: they say where the deps go and are not the user's to move.
    return { ...phaseEnv, ...functionEnv, ...base, ...extra };
  };

  const installation = runtime.phases.installation;
  const compilation = runtime.phases.compilation;
  const installs = hasDeps && installation?.command !== undefined;
  const compiles = compilation?.command !== undefined;
  if (hasDeps && installation === undefined && !compiles) {
    warnings.push(`runtime ${spec.runtime} has no installation phase: ${runtime.depName} is copied to /kubeless but nothing installs it`);
  }

  const imageEnvTable: Record<string, string> = {
    FUNC_HANDLER: spec.handler.function,
    MOD_NAME: spec.handler.module,
    FUNC_TIMEOUT: spec.timeout,
    FUNC_RUNTIME: spec.runtime,
    // The Deployment sets the real limit through its own env; the image carries Kubeless's default.
    FUNC_MEMORY_LIMIT: '0',
    FUNC_PORT: FUNCTION_PORT,
    KUBELESS_INSTALL_VOLUME: INSTALL_VOLUME,
  };
  const runtimePhase = runtime.phases.runtime;
  const phases: BuildPlan['phases'] = {
    runtime: {
      image: await pin(runtimePhase.image),
      catalogImage: runtimePhase.image,
      env: { ...expandEnv(runtimePhase.env, { ...base, ...imageEnvTable }), ...imageEnvTable },
    },
  };
  if (runtimePhase.command !== undefined) phases.runtime.command = runtimePhase.command;
  if (installs && installation !== undefined) {
    phases.installation = { image: await pin(installation.image), catalogImage: installation.image, command: installation.command as string, env: stepEnv(installation) };
  }
  if (compiles && compilation !== undefined) {
    phases.compilation = {
      image: await pin(compilation.image),
      catalogImage: compilation.image,
      command: compilation.command as string,
      env: stepEnv(compilation, { KUBELESS_FUNC_NAME: spec.handler.function }),
    };
  }

  const readSources = (signal: AbortSignal | undefined): Promise<MaterialisedSource> =>
    materialiseSources(spec, { depName: runtime.depName, fileNameSuffix: runtime.fileNameSuffix, download: options.download, limits: options.limits, signal });

  let source: PlanSource;
  let materialised: Promise<MaterialisedSource> | undefined;
  if (spec.contentType.source === 'url' && spec.checksum !== undefined) {
    source = { kind: 'url', checksum: spec.checksum };
  } else {
    const files = await readSources(options.signal);
    warnings.push(...files.warnings);
    source = { kind: 'files', source: files };
    materialised = Promise.resolve(files);
  }

  return {
    function: spec,
    runtime,
    phases,
    source,
    platform,
    labels: { ...options.labels },
    warnings,
    materialise(signal?: AbortSignal): Promise<MaterialisedSource> {
      if (materialised === undefined) {
        const pending = readSources(signal ?? options.signal);
        materialised = pending;
        // A failed download may be retried by calling again.
        pending.catch(() => {
          if (materialised === pending) materialised = undefined;
        });
      }
      return materialised;
    },
  };
}

function isFunctionSpec(value: unknown): value is FunctionSpec {
  return typeof value === 'object' && value !== null && !Buffer.isBuffer(value) &&
    'handler' in value && typeof (value as FunctionSpec).handler === 'object' && 'contentType' in value && Array.isArray((value as FunctionSpec).warnings);
}

async function pinImage(image: string, fn: string, resolve: ImageDigestResolver | undefined): Promise<string> {
  const reference = parseReference(image);
  if (reference.digest !== undefined) return `${reference.name}@${reference.digest}`;
  if (resolve === undefined) {
    throw new BuilderError('E_IMAGE_NOT_PINNED', 'user', `function ${fn}: runtime image ${image} is given by tag and no resolveImageDigest was supplied to pin it to a digest`, {
      details: { function: fn, image },
    });
  }
  const resolved = await resolve(image);
  let pinned;
  try {
    pinned = parseReference(resolved);
  } catch (error) {
    throw new BuilderError('E_IMAGE_NOT_PINNED', 'infrastructure', `resolving ${image} gave ${JSON.stringify(resolved)}, which is not an image reference`, { cause: error, details: { image } });
  }
  if (pinned.digest === undefined || !pinned.digest.startsWith('sha256:')) {
    throw new BuilderError('E_IMAGE_NOT_PINNED', 'infrastructure', `resolving ${image} gave ${resolved}, which has no sha256 digest`, { details: { image } });
  }
  if (pinned.name !== reference.name) {
    throw new BuilderError('E_IMAGE_NOT_PINNED', 'infrastructure', `resolving ${image} gave an image of another repository, ${pinned.name}`, { details: { image } });
  }
  return `${pinned.name}@${pinned.digest}`;
}
