// The public API of function-image-builder, by name. Everything else under lib/ is internal and may
// change in any release. test/unit/public-api.test.ts pins this list: adding an export is a deliberate
// change. The controller side (Kubernetes) is the `function-image-builder/kubernetes` subpath, so
// importing this module never loads @kubernetes/client-node.

// Errors: one class, stable codes, and the exit codes derived from them.
export { BuilderError, exitCodeFor, EXIT_OK, EXIT_INTERNAL_ERROR, EXIT_USER_ERROR, EXIT_INFRASTRUCTURE_ERROR } from './errors.ts';
export type { ErrorCode, ErrorKind } from './errors.ts';

// Build a Function's image, or only compute its tag.
export { buildFunctionImage } from './build.ts';
export type { BuildFunctionOptions, BuildResult, BuildTimings, BuildProgress, BuildLogEvent } from './build.ts';
export type { DockerProgress } from './docker/progress.ts';
export { functionImageTag } from './image/identity.ts';
export type { FunctionImageTagOptions } from './image/identity.ts';

// Function objects (kubeless.io/v1beta1).
export { parseFunction, parseFunctions } from './function/parse.ts';
export type { FunctionSpec, FunctionEnvVar, ContentType, ContentSource, ArchiveKind } from './function/spec.ts';
export type { DownloadOptions } from './function/download.ts';
export type { ArchiveLimits } from './function/archive/limits.ts';

// The runtime catalog (Kubeless runtime-images).
export { parseRuntimeCatalog, listRuntimes, findRuntime } from './runtime/catalog.ts';
export { defaultRuntimeCatalog } from './runtime/default-catalog.ts';
export type { RuntimeCatalog, RuntimeDefinition, RuntimeVersion, RuntimePhase, PhaseName, ResolvedRuntime } from './runtime/catalog.ts';

// Registries: docker configs (.dockerconfigjson / .dockercfg), per-registry settings, image references.
export { parseDockerConfig, resolveCredentials } from './registry/credentials.ts';
export type { DockerConfig, DockerConfigEntry, RegistryCredential } from './registry/credentials.ts';
export type { RegistrySettings } from './registry/transport.ts';
// Registry connections are pooled across calls; this closes them (a controller shutting down).
export { closeRegistryConnections } from './registry/transport.ts';
export { parseReference } from './image/reference.ts';
export type { ImageReference } from './image/reference.ts';
