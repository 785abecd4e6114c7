// Reuse of the deps layer by content. Its key hashes everything the install (and compile) result
// depends on: the installation image digest, command and env, and the deps file; with a compile
// phase also the compilation image, command, env and every function file (the compiled result holds
// the code). The layer is recorded in the target repository under the tag `deps-<key>`, as a small
// OCI image of that one layer (its descriptor's annotation and its config carry the diff_id), so a
// code-only change built anywhere (another machine, a Job, the controller) finds it with one request
// and runs no install.
import { canonicalJson } from '../image/identity.ts';
import { sha256Hex } from '../function/files.ts';
import type { MaterialisedSource } from '../function/source.ts';
import { planHasSteps, type BuildPlan } from '../image/plan.ts';
import type { RegistryClient } from '../registry/client.ts';
import { RegistryError } from '../registry/errors.ts';
import { MEDIA_TYPE, parsePlatform, sha256Digest, type Descriptor } from '../registry/manifest.ts';
import type { AppendLayer } from './assemble.ts';
import { configBytes } from './config.ts';
import { imageManifest } from './manifest.ts';

const DEPS_KEY_FORMAT = 'function-image-builder/deps/v1';
const DEPS_TAG_PREFIX = 'deps-';
const DEPS_KEY_LABEL = 'io.function-image-builder.deps-key';
export const DEPS_LAYER_HISTORY = 'function-image-builder: installed deps /kubeless';

/** The deps layer's key (sha256 hex), or undefined when no step runs (nothing to reuse). */
export function depsKey(plan: BuildPlan, source: MaterialisedSource): string | undefined {
  if (!planHasSteps(plan)) return undefined;
  const { installation, compilation } = plan.phases;
  const step = (phase: typeof installation) => phase && { image: phase.image, command: phase.command ?? null, env: phase.env };
  return sha256Hex(
    canonicalJson({
      format: DEPS_KEY_FORMAT,
      depName: plan.runtime.depName,
      deps: source.deps === undefined ? null : source.deps.sha256,
      installation: step(installation) ?? null,
      compilation: step(compilation) ?? null,
      // A compiled result holds the code itself, so it is only reused for the same files.
      files: compilation === undefined ? null : source.files.map((f) => ({ path: f.path, type: f.type, mode: f.mode, sha256: f.sha256, link: f.linkTarget ?? null })),
      platform: plan.platform,
    }),
  );
}

export const depsTag = (key: string) => `${DEPS_TAG_PREFIX}${key}`;

/** The annotation on the recorded layer's descriptor that carries its diff_id, so one GET finds both. */
const DIFF_ID_ANNOTATION = 'io.function-image-builder.diff-id';

/** The recorded deps layer of `key` in the target repository, or undefined. One request. */
export async function findDepsLayer(client: RegistryClient, repository: string, key: string): Promise<AppendLayer | undefined> {
  let manifest;
  try {
    manifest = await client.getManifest(repository, depsTag(key));
  } catch (error) {
    if (error instanceof RegistryError && error.code === 'E_REGISTRY_NOT_FOUND') return undefined;
    throw error;
  }
  const layer = (manifest.json.layers as Descriptor[] | undefined)?.[0];
  const diffId = layer?.annotations?.[DIFF_ID_ANNOTATION];
  if (layer === undefined || diffId === undefined) return undefined;
  return { digest: layer.digest, size: layer.size, diffId, createdBy: DEPS_LAYER_HISTORY, source: { kind: 'registry', registry: client.registry, repository } };
}

/**
 * Records `layer` (already pushed to the repository) under `deps-<key>`. Only the small config blob
 * and the manifest are sent.
 */
export async function recordDepsLayer(client: RegistryClient, repository: string, key: string, layer: AppendLayer, platform: string): Promise<void> {
  const { os, architecture, variant } = parsePlatform(platform);
  const config = configBytes({
    architecture,
    os,
    ...(variant ? { variant } : {}),
    config: { Labels: { [DEPS_KEY_LABEL]: key } },
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
  });
  const configDescriptor: Descriptor = { mediaType: MEDIA_TYPE.ociConfig, digest: sha256Digest(config), size: config.length };
  await client.pushBlob(repository, config, { digest: configDescriptor.digest });
  const manifest = imageManifest('oci', configDescriptor, [{ mediaType: MEDIA_TYPE.ociLayerGzip, digest: layer.digest, size: layer.size, annotations: { [DIFF_ID_ANNOTATION]: layer.diffId } }]);
  await client.putManifest(repository, depsTag(key), manifest.bytes, manifest.mediaType);
}
