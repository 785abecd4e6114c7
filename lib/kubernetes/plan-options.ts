// How the controller side resolves a Function's plan from the builder's settings. The scheduler,
// prune and the CLI's job-manifest and job-sources each compute the tag a Job is held to, so they
// must resolve with the same catalog, credentials, registry settings and url allowance: a setting
// one of them left out (prune once resolved without the private-address allowance) gives another
// tag, or refuses a source the others fetch.
import type { ImageDigestResolver, ResolvePlanOptions } from '../image/plan.ts';
import { registryDigestResolver } from '../image/resolve-digest.ts';
import type { BuilderConfig, RegistrySecretRef } from './config.ts';

/** What of a BuilderConfig the plan depends on; the Job's mounted inputs give the same. */
export type PlanSettings = Pick<BuilderConfig, 'catalog' | 'registries' | 'allowPrivateAddresses'> & { registrySecret: Pick<RegistrySecretRef, 'dockerConfig'> };

/** resolveBuildPlan()'s options for `config`: runtime images pinned at their registries with the Secret's credentials. */
export function planOptions(config: PlanSettings, signal?: AbortSignal): ResolvePlanOptions & { resolveImageDigest: ImageDigestResolver } {
  const { catalog, registries, registrySecret } = config;
  return {
    catalog,
    resolveImageDigest: registryDigestResolver({ dockerConfig: registrySecret.dockerConfig, registries, signal }),
    download: { allowPrivateAddresses: config.allowPrivateAddresses ?? false },
    ...(signal === undefined ? {} : { signal }),
  };
}
