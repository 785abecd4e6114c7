// How a Function's plan is resolved from the builder's settings. The scheduler, prune and the CLI's
// job-manifest, job-sources and job each compute the tag a Job is held to, so they must resolve with
// the same catalog, credentials, registry settings and url allowance: a setting one of them left out
// (prune once resolved without the private-address allowance) gives another tag, or refuses a source
// the others fetch.
import type { ImageDigestResolver, ResolvePlanOptions } from '../image/plan.ts';
import { registryDigestResolver, type DigestResolverOptions } from '../image/resolve-digest.ts';
import type { BuilderConfig, RegistrySecretRef } from './config.ts';

/** What of a BuilderConfig the plan depends on; the Job's mounted inputs give the same. */
export type PlanSettings = Pick<BuilderConfig, 'catalog' | 'registries' | 'allowPrivateAddresses'> & { registrySecret: Pick<RegistrySecretRef, 'dockerConfig'> };

/** The settings the plan takes as they are, for resolveBuildPlan() and buildFunctionImage() alike. */
export function planInputs(config: Pick<PlanSettings, 'catalog' | 'allowPrivateAddresses'>): Pick<ResolvePlanOptions, 'catalog' | 'download'> {
  return { catalog: config.catalog, download: { allowPrivateAddresses: config.allowPrivateAddresses ?? false } };
}

/**
 * resolveBuildPlan()'s options for `config`: runtime images pinned at their registries with the
 * Secret's credentials; `log` gets the registry clients' events (credential key used, retries).
 */
export function planOptions(config: PlanSettings, signal?: AbortSignal, log?: DigestResolverOptions['log']): ResolvePlanOptions & { resolveImageDigest: ImageDigestResolver } {
  const { registries, registrySecret } = config;
  return {
    ...planInputs(config),
    resolveImageDigest: registryDigestResolver({ dockerConfig: registrySecret.dockerConfig, registries, signal, log }),
    ...(signal === undefined ? {} : { signal }),
  };
}
