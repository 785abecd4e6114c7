// The daemon reports a failed image pull only as text (a JSON message of the build or pull stream),
// and the same wording reaches both of its pulls: a Dockerfile's FROM and a step's image pulled
// before the step runs. One reading of that text, so both name the image and the remedy alike.
import { BaseImageError } from './errors.ts';

/** Words of a registry's "no such repository / tag / manifest" answers, as the daemon relays them. */
const MISSING = /not found|manifest unknown|does not exist|name unknown|no such image/i;
/** Words of a registry refusing the daemon's credentials (or their absence). */
const DENIED = /unauthorized|denied|authentication required|no basic auth credentials|forbidden/i;

export interface PullFailureOptions {
  /** What the image is to the build, for the message: "base image", "image of the install step". */
  what?: string;
  /** Facts to keep with the error beside `image` (the Dockerfile step, its output tail). */
  details?: Record<string, unknown>;
}

/**
 * The typed error for the daemon's failed pull of `image`, from the daemon's message. A missing
 * image and a refused pull are the user's to fix and say how; anything else (a registry down, a
 * broken connection) may pass on a retry.
 */
export function pullFailure(image: string, message: string, options: PullFailureOptions = {}): BaseImageError {
  const what = options.what ?? 'image';
  const details = { ...options.details, image, daemonMessage: message };
  const missing = MISSING.test(message);
  const denied = DENIED.test(message);
  if (missing) {
    // Docker Hub answers an anonymous pull of a private repository with "pull access denied ...
    // repository does not exist or may require 'docker login'": either remedy may be the one.
    const remedy = denied
      ? 'Check the runtime catalog entry that names it, or give a credential for its registry in the docker config if the repository is private.'
      : 'Check the runtime catalog entry that names it.';
    return new BaseImageError('E_BASE_IMAGE_NOT_FOUND', 'user', `the ${what} ${image} does not exist in its registry (${message}). ${remedy}`, { details });
  }
  if (denied) {
    return new BaseImageError('E_BASE_IMAGE_PULL_FAILED', 'user', `the registry refused to hand out the ${what} ${image} (${message}). Give a credential for its registry in the docker config.`, { details });
  }
  return new BaseImageError('E_BASE_IMAGE_PULL_FAILED', 'infrastructure', `pulling the ${what} ${image} failed: ${message}`, { details });
}
