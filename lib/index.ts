// The public API: re-exports only, in pipeline order. Each module below owns one step.
export * from './errors.ts';

// Function objects: parse, validate, materialise sources.
export * from './function/spec.ts';
export * from './function/errors.ts';
export * from './function/parse.ts';
export * from './function/files.ts';
export * from './function/source.ts';
export * from './function/download.ts';
export * from './function/archive/limits.ts';

// The runtime catalog (Kubeless runtime-images) and $(VAR) expansion.
export * from './runtime/errors.ts';
export * from './runtime/expand.ts';
export * from './runtime/catalog.ts';
export * from './runtime/default-catalog.ts';

// Image references, the build plan, its identity (the tag) and its build context.
export * from './image/reference.ts';
export * from './image/plan.ts';
export * from './image/identity.ts';
export * from './image/resolve-digest.ts';
export * from './image/dockerfile.ts';
export * from './image/context.ts';

// Registries: credentials, transport settings, the API client.
export * from './registry/credentials.ts';
export * from './registry/errors.ts';
export { registryEndpoint, transportFor, isLoopbackHost, DOCKER_HUB_API } from './registry/transport.ts';
export type { RegistryTransport, RegistrySettings, RegistryEndpoint } from './registry/transport.ts';
export { parseWwwAuthenticate } from './registry/auth.ts';
export type { Challenge } from './registry/auth.ts';
export * from './registry/manifest.ts';
export * from './registry/client.ts';

// The Docker Engine: connect, build, push.
export * from './docker/errors.ts';
export * from './docker/connect.ts';
export * from './docker/auth.ts';
export * from './docker/progress.ts';
export * from './docker/build-image.ts';
export * from './docker/push-image.ts';

// The registry engine: deterministic layers, config and manifest, the assembled image, blob copies.
export * from './docker/run-step.ts';
export * from './engine/errors.ts';
export * from './engine/layer.ts';
export * from './engine/kubeless-layers.ts';
export * from './engine/config.ts';
export * from './engine/manifest.ts';
export * from './engine/base.ts';
export * from './engine/assemble.ts';
export * from './engine/copy-blobs.ts';
export * from './engine/mirror-base.ts';
export * from './engine/deps.ts';
export * from './engine/install.ts';
export * from './engine/append-build.ts';

// The whole build step.
export * from './target.ts';
export * from './build.ts';

// Kubernetes: settings, Job manifests, scheduling and waiting.
export * from './kubernetes/contract.ts';
export * from './kubernetes/names.ts';
export * from './kubernetes/errors.ts';
export * from './kubernetes/registry-settings.ts';
export * from './kubernetes/config.ts';
export * from './kubernetes/manifest.ts';
export * from './kubernetes/deployment.ts';
export * from './kubernetes/jobs.ts';
export * from './kubernetes/schedule.ts';
