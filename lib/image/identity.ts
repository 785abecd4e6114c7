// The image tag: sha256 (hex) of a canonical JSON document (keys sorted, no whitespace) holding
// every input that changes the image and nothing else — not the namespace, the Function's own
// labels, uid or time, nor the runtime phase's command (the image keeps the runtime image's own
// entrypoint; Kubeless never runs that command at build time). Two machines given the same
// Function and catalog compute the same tag; a change to the runtime, a base image digest, an
// install or compile command, a step's env, the handler, the timeout, a byte of code or of the
// deps file, the content behind a url (its checksum), the platform or an extra image label gives
// a new one.
//
// IDENTITY_FORMAT names how the image is assembled from these inputs (Dockerfile, layout): bump it
// whenever that changes, so images built the old way are not taken for new ones.
import { BuilderError } from '../errors.ts';
import { sha256Hex } from '../function/files.ts';
import { formatContentType, functionId, type FunctionSpec } from '../function/spec.ts';
import type { DockerConfig } from '../registry/credentials.ts';
import type { RegistrySettings } from '../registry/transport.ts';
import { planImages, resolveBuildPlan, type BuildPlan, type PlanPhase, type ResolvePlanOptions } from './plan.ts';
import { registryDigestResolver } from './resolve-digest.ts';

export const IDENTITY_FORMAT = 'function-image-builder/identity/v3';

type Canonical = null | boolean | number | string | Canonical[] | { [key: string]: Canonical };

/** JSON with object keys sorted (by code unit) at every level and no whitespace. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('canonicalJson: numbers must be finite');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item === undefined ? null : item)).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  throw new TypeError(`canonicalJson: cannot encode a ${typeof value}`);
}

function phaseDocument(phase: PlanPhase | undefined, withCommand: boolean): Canonical | undefined {
  if (phase === undefined) return undefined;
  return withCommand ? { image: phase.image, command: phase.command ?? null, env: phase.env } : { image: phase.image, env: phase.env };
}

/** The document the tag hashes; exposed so a caller can see (and diff) why two tags differ. */
export function identityDocument(plan: BuildPlan): Record<string, Canonical> {
  const spec: FunctionSpec = plan.function;
  let source: Canonical;
  let deps: Canonical;
  if (plan.source.kind === 'url') {
    source = { checksum: plan.source.checksum };
    deps = spec.contentType.depsIncluded ? { inArchive: true } : spec.deps === undefined ? null : { sha256: sha256Hex(spec.deps) };
  } else {
    const materialised = plan.source.source;
    source = {
      files: materialised.files.map((file) => {
        const entry: Record<string, Canonical> = { path: file.path, type: file.type, mode: file.mode, sha256: file.sha256 };
        if (file.linkTarget !== undefined) entry.linkTarget = file.linkTarget;
        return entry;
      }),
    };
    deps = materialised.deps === undefined ? null : { sha256: materialised.deps.sha256 };
  }
  const phases: Record<string, Canonical> = {};
  for (const name of ['installation', 'compilation', 'runtime'] as const) {
    // renderDockerfile runs the installation and compilation commands and no runtime one.
    const document = phaseDocument(plan.phases[name], name !== 'runtime');
    if (document !== undefined) phases[name] = document;
  }
  return {
    format: IDENTITY_FORMAT,
    runtime: {
      id: plan.runtime.id,
      version: plan.runtime.version,
      depName: plan.runtime.depName,
      fileNameSuffix: plan.runtime.fileNameSuffix,
    },
    phases,
    handler: `${spec.handler.module}.${spec.handler.function}`,
    contentType: formatContentType(spec.contentType),
    timeout: spec.timeout,
    source,
    deps,
    platform: plan.platform,
    labels: plan.labels,
  };
}

/** The image tag of a resolved plan: 64 hex digits. */
export function planIdentity(plan: BuildPlan): string {
  return sha256Hex(canonicalJson(identityDocument(plan)));
}

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

/**
 * The plan's tag, held to the one the scheduler computed (undefined: any). The build Job and its
 * init containers resolve the plan again in the pod; what they make must be what the scheduler waits for.
 */
export function expectedPlanIdentity(plan: BuildPlan, expected: string | undefined): string {
  const tag = planIdentity(plan);
  if (expected !== undefined && expected !== tag) throw new TagMismatchError(functionId(plan.function), expected, tag, planImages(plan));
  return tag;
}

export interface FunctionImageTagOptions extends ResolvePlanOptions {
  /** Used to pin tag-only runtime images when no resolveImageDigest is given. */
  dockerConfig?: DockerConfig;
  registries?: RegistrySettings;
}

/**
 * The tag a Function's image has, or will have once built: what a controller computes to ask the
 * registry whether the image exists. Reads nothing but the Function and, for runtime images given
 * by tag, their registries (and a url source only when it has no checksum).
 */
export async function functionImageTag(fn: FunctionSpec | string | Buffer | object, options: FunctionImageTagOptions = {}): Promise<string> {
  const { dockerConfig, registries, ...planOptions } = options;
  if (planOptions.resolveImageDigest === undefined) {
    planOptions.resolveImageDigest = registryDigestResolver({ dockerConfig, registries, ...(options.platform === undefined ? {} : { platform: options.platform }) });
  }
  return planIdentity(await resolveBuildPlan(fn, planOptions));
}
