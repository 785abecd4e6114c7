// Typed failures of the Docker Engine step. Which kind each is decides whether a Job retries:
// a Dockerfile step that fails (the install command) fails the same way again, a daemon that
// does not answer may answer on the next attempt.
import { BuilderError, type BuilderErrorOptions, type ErrorKind } from '../errors.ts';

/** The daemon did not answer (socket missing, connection refused, TLS handshake failed, timeout). */
export class DockerUnavailableError extends BuilderError {
  constructor(message: string, options: BuilderErrorOptions = {}) {
    super('E_DOCKER_UNAVAILABLE', 'infrastructure', message, options);
  }
}

/** DOCKER_HOST / DOCKER_CERT_PATH cannot be used as given. */
export class DockerConfigError extends BuilderError {
  constructor(message: string, options: BuilderErrorOptions = {}) {
    super('E_DOCKER_CONFIG', 'user', message, options);
  }
}

/** A build step failed; `details.step` and `details.outputTail` say which and how. */
export class BuildFailedError extends BuilderError {
  constructor(kind: ErrorKind, message: string, options: BuilderErrorOptions = {}) {
    super('E_BUILD_FAILED', kind, message, options);
  }
}

/** A `FROM` image could not be found in (or pulled from) its registry; `details.image` names it. */
export class BaseImageError extends BuilderError {
  constructor(code: 'E_BASE_IMAGE_NOT_FOUND' | 'E_BASE_IMAGE_PULL_FAILED', kind: ErrorKind, message: string, options: BuilderErrorOptions = {}) {
    super(code, kind, message, options);
  }
}

/** Pushing the built image failed; denied credentials are a user error naming the credential key. */
export class PushFailedError extends BuilderError {
  constructor(kind: ErrorKind, message: string, options: BuilderErrorOptions = {}) {
    super('E_PUSH_FAILED', kind, message, options);
  }
}

/** The caller's AbortSignal fired or the build's time limit passed. */
export class BuildAbortedError extends BuilderError {
  constructor(code: 'E_BUILD_ABORTED' | 'E_BUILD_TIMEOUT', message: string, options: BuilderErrorOptions = {}) {
    super(code, 'infrastructure', message, options);
  }
}

/**
 * The signal that killed a step, from its exit code (a shell reports signal N as 128 + N): 9 when
 * the daemon stopped or restarted under it or the kernel's OOM killer took it. Such a failure is not
 * the function's command failing, so it is an infrastructure error; undefined for a normal exit.
 */
export function killedBySignal(exitCode: number | undefined): number | undefined {
  return exitCode !== undefined && exitCode > 128 && exitCode <= 128 + 64 ? exitCode - 128 : undefined;
}
