// The function image's config: the base image's config with the runtime env and labels set, and one
// rootfs.diff_ids + history entry appended per new layer. User, Entrypoint, Cmd, WorkingDir and the
// rest of the base's settings stay as they are. Every time in it is fixed, so it is reproducible.
import { CONTEXT_MTIME } from '../image/tar.ts';
import { canonicalJson } from '../image/identity.ts';

const IMAGE_CREATED = CONTEXT_MTIME.toISOString().replace('.000Z', 'Z');

export interface AppendedLayer {
  diffId: string;
  /** The history line, e.g. "function-image-builder: code /kubeless". */
  createdBy: string;
}

export interface ConfigChanges {
  /** Set as Docker's ENV does: an existing name keeps its place with the new value, new names go last. */
  env: Record<string, string>;
  /** Merged over the base's labels. */
  labels: Record<string, string>;
  layers: AppendedLayer[];
}

type Json = Record<string, unknown>;

export function appendConfig(base: Json, changes: ConfigChanges): Json {
  const config: Json = { ...((base.config as Json | undefined) ?? {}) };
  const env = Array.isArray(config.Env) ? [...(config.Env as string[])] : [];
  for (const [name, value] of Object.entries(changes.env)) {
    const at = env.findIndex((pair) => pair === name || pair.startsWith(`${name}=`));
    if (at === -1) env.push(`${name}=${value}`);
    else env[at] = `${name}=${value}`;
  }
  config.Env = env;
  config.Labels = { ...((config.Labels as Record<string, string> | null | undefined) ?? {}), ...changes.labels };
  const rootfs = (base.rootfs as { diff_ids?: string[] } | undefined) ?? {};
  return {
    ...base,
    created: IMAGE_CREATED,
    config,
    rootfs: { type: 'layers', diff_ids: [...(rootfs.diff_ids ?? []), ...changes.layers.map((layer) => layer.diffId)] },
    history: [...((base.history as Json[] | undefined) ?? []), ...changes.layers.map((layer) => ({ created: IMAGE_CREATED, created_by: layer.createdBy }))],
  };
}

/** Canonical bytes of a config: the digest depends on them, so no whitespace and a fixed key order. */
export function configBytes(config: Json): Buffer {
  return Buffer.from(canonicalJson(config));
}
