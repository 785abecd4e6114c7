/**
 * Every failure the library reports is a BuilderError with a stable `code`.
 *
 * `kind` tells a caller whether retrying can help: a `user` error (bad spec, unsafe archive,
 * checksum mismatch, denied credentials) fails the same way every time, an `infrastructure`
 * error (daemon or registry down, timeout) may pass on a retry. The Job's exit code and the
 * CLI's exit code are derived from it, so a podFailurePolicy retries only the latter.
 */
export type ErrorKind = 'user' | 'infrastructure';

/**
 * Every stable error code, with when it is used. A code is never renamed or reused for another
 * meaning; adding one here is a deliberate change of the public API.
 */
export type ErrorCode =
  /** unsafe or oversized archive source */
  | 'E_ARCHIVE_UNSAFE'
  /** a runtime image the build starts FROM does not exist */
  | 'E_BASE_IMAGE_NOT_FOUND'
  /** the Engine could not pull a runtime image */
  | 'E_BASE_IMAGE_PULL_FAILED'
  /** the runtime image's manifest or config cannot be appended to */
  | 'E_BASE_IMAGE_UNSUPPORTED'
  /** the caller's signal cancelled the call */
  | 'E_BUILD_ABORTED'
  /** a build step (install, compile) failed */
  | 'E_BUILD_FAILED'
  /** the build Job failed; details carry the Job's own code */
  | 'E_BUILD_JOB_FAILED'
  /** the call ran past its time limit */
  | 'E_BUILD_TIMEOUT'
  /** a blob in the local blob cache does not match its digest; nothing was stored */
  | 'E_CACHE_DIGEST_MISMATCH'
  /** the blob cache directory cannot be created, read or written */
  | 'E_CACHE_UNUSABLE'
  /** the runtime catalog (runtime-images) is malformed */
  | 'E_CATALOG_INVALID'
  /** spec.checksum does not match the source bytes */
  | 'E_CHECKSUM_MISMATCH'
  /** a kubeless-config setting is malformed */
  | 'E_CONFIG_INVALID'
  /** a docker config entry cannot be used */
  | 'E_CREDENTIALS_INVALID'
  /** a value cannot be placed safely into the Dockerfile */
  | 'E_DOCKERFILE_VALUE'
  /** the docker config file is unreadable or malformed */
  | 'E_DOCKER_CONFIG'
  /** the Docker Engine does not answer */
  | 'E_DOCKER_UNAVAILABLE'
  /** an engine name, or an option the chosen engine cannot honour */
  | 'E_ENGINE_OPTION'
  /** the Function object is malformed */
  | 'E_FUNCTION_INVALID'
  /** the Function names its own image; nothing to build */
  | 'E_FUNCTION_PREBUILT'
  /** the Function, or an inline field of it, is past its size limit, or does not fit the Job's inputs */
  | 'E_FUNCTION_TOO_LARGE'
  /** a layer or config written to an output does not match its digest */
  | 'E_IMAGE_CONTENT'
  /** an image reference lacks the digest it needs */
  | 'E_IMAGE_NOT_PINNED'
  /** a file or stdin given to the CLI cannot be read */
  | 'E_INPUT_UNREADABLE'
  /** the install step must run locally and no Docker Engine answers */
  | 'E_INSTALL_NO_DOCKER'
  /** runInstall is false and no deps layer is recorded for the install step */
  | 'E_INSTALL_REQUIRED'
  /** installedDir is missing or holds what cannot be layered */
  | 'E_INSTALLED_DIR'
  /** a bug (reported by the Job, never thrown by the library) */
  | 'E_INTERNAL'
  /** another build Job holds the name */
  | 'E_JOB_CONFLICT'
  /** a mounted input of the Job is missing or malformed */
  | 'E_JOB_INPUT_INVALID'
  /** the registry engine's Job was asked for without the install/compile steps of the plan */
  | 'E_JOB_STEPS_MISSING'
  /** waiting for the build Job ran past its limit */
  | 'E_JOB_TIMEOUT'
  /** the API server answered with an unexpected error */
  | 'E_KUBERNETES_API'
  /** the API server refused a write as conflicting */
  | 'E_KUBERNETES_CONFLICT'
  /** the service account lacks a permission */
  | 'E_KUBERNETES_FORBIDDEN'
  /** the API server refused an object as invalid */
  | 'E_KUBERNETES_INVALID'
  /** an object the call needs does not exist */
  | 'E_KUBERNETES_NOT_FOUND'
  /** the API server refused the credentials */
  | 'E_KUBERNETES_UNAUTHORIZED'
  /** the API server does not answer */
  | 'E_KUBERNETES_UNREACHABLE'
  /** a manifest's media type is missing or unsupported */
  | 'E_MANIFEST_MEDIA_TYPE'
  /** other builds writing the same oci:DIR at once kept replacing it while this one put its layout in place */
  | 'E_OUTPUT_BUSY'
  /** an output (oci:DIR, docker-archive:FILE) is malformed or its path cannot take it (infrastructure: the file system failed the final rename) */
  | 'E_OUTPUT_INVALID'
  /** the Deployment patch options are malformed */
  | 'E_PATCH_INVALID'
  /** the platform option is malformed */
  | 'E_PLATFORM_INVALID'
  /** a prune option is malformed (keep) */
  | 'E_PRUNE_INVALID'
  /** the Engine's push failed */
  | 'E_PUSH_FAILED'
  /** an image reference is malformed */
  | 'E_REFERENCE_INVALID'
  /** the registry does not allow deleting manifests */
  | 'E_REGISTRY_DELETE_UNSUPPORTED'
  /** the registry refused the action for these credentials */
  | 'E_REGISTRY_DENIED'
  /** the registry's content does not match its digest */
  | 'E_REGISTRY_DIGEST_MISMATCH'
  /** the repository, manifest or blob does not exist */
  | 'E_REGISTRY_NOT_FOUND'
  /** an index has no image for the platform */
  | 'E_REGISTRY_PLATFORM_NOT_FOUND'
  /** the registry answered outside the distribution API */
  | 'E_REGISTRY_PROTOCOL'
  /** the registry keeps answering 429 */
  | 'E_REGISTRY_RATE_LIMITED'
  /** the registry refused what was sent */
  | 'E_REGISTRY_REJECTED'
  /** the registry Secret is of the wrong type or malformed */
  | 'E_REGISTRY_SECRET_INVALID'
  /** the registry did not answer in time */
  | 'E_REGISTRY_TIMEOUT'
  /** the registry's TLS certificate was refused */
  | 'E_REGISTRY_TLS'
  /** the registry refused the credentials (or needs some) */
  | 'E_REGISTRY_UNAUTHORIZED'
  /** the registry answers 5xx */
  | 'E_REGISTRY_UNAVAILABLE'
  /** the registry cannot be connected to */
  | 'E_REGISTRY_UNREACHABLE'
  /** spec.runtime is not in the catalog */
  | 'E_RUNTIME_UNKNOWN'
  /** a url source could not be downloaded */
  | 'E_SOURCE_DOWNLOAD'
  /** the function source cannot be decoded */
  | 'E_SOURCE_INVALID'
  /** a source is larger than its limit */
  | 'E_SOURCE_TOO_LARGE'
  /** a url source or one of its redirects leads to a non-public address or another scheme */
  | 'E_SOURCE_URL_REFUSED'
  /** an env variable of an install/compile step cannot be passed to a process */
  | 'E_STEP_ENV_INVALID'
  /** the inputs give another tag than the one scheduled */
  | 'E_TAG_MISMATCH'
  /** the target registry cannot be determined or is malformed */
  | 'E_TARGET_INVALID'
  /** the command line is wrong */
  | 'E_USAGE'
  /** the image did not appear in time */
  | 'E_WAIT_TIMEOUT';


export interface BuilderErrorOptions {
  cause?: unknown;
  /** Extra machine-readable facts (field names, hosts, steps); never secrets. */
  details?: Record<string, unknown>;
}

export class BuilderError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, kind: ErrorKind, message: string, options: BuilderErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.kind = kind;
    this.details = options.details ?? {};
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, kind: this.kind, message: this.message, ...this.details };
  }
}

/** Exit codes of the CLI and the Job: a podFailurePolicy fails the Job at once on EXIT_USER_ERROR. */
export const EXIT_OK = 0;
export const EXIT_INTERNAL_ERROR = 1;
export const EXIT_USER_ERROR = 2;
export const EXIT_INFRASTRUCTURE_ERROR = 3;

export function exitCodeFor(error: unknown): number {
  if (error instanceof BuilderError) {
    return error.kind === 'user' ? EXIT_USER_ERROR : EXIT_INFRASTRUCTURE_ERROR;
  }
  return EXIT_INTERNAL_ERROR;
}
