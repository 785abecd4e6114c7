// The controller side of the public API (`function-image-builder/kubernetes`): read kubeless-config,
// schedule a build (cache check, Job, wait), the build Job's manifests and the Deployment patch.
// test/unit/public-api.test.ts pins this list.
export { readBuilderConfig, dockerConfigFromSecret, DEFAULT_JOB_SETTINGS, KUBELESS_CONFIG_NAME, KUBELESS_NAMESPACE, REGISTRY_SECRET_NAME } from './config.ts';
export type { BuilderConfig, ReadBuilderConfigOptions, JobSettings, RegistrySecretRef } from './config.ts';
export { scheduleBuild } from './schedule.ts';
export type { ScheduleOptions, ScheduledBuild } from './schedule.ts';
export { BuildJobError } from './jobs.ts';
export type { RunJobOptions, JobOutcome } from './jobs.ts';
export { buildJobManifest } from './manifest.ts';
export type { JobFunction, JobManifests } from './manifest.ts';
export { functionDeploymentPatch } from './deployment.ts';
export type { DeploymentPatchOptions, ImageResult } from './deployment.ts';
export type { JobResult, JobFailure } from './termination-message.ts';
export { pruneFunctionImages, DEFAULT_KEEP } from './prune.ts';
export type { PruneOptions, PruneReport, PrunedRepository, PrunedImage, KeepReason } from './prune.ts';
