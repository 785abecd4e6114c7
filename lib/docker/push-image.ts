// POST /images/{name}/push: the daemon uploads the layers and the manifest with the credential in
// X-Registry-Auth and reports the manifest digest in an aux message. Like /build, failures arrive
// inside a 200 stream. Afterwards the local tag is no longer needed: the registry holds the image.
import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { encodeRegistryAuth, type EngineAuth } from './auth.ts';
import { retryCleanup } from './cleanup.ts';
import { aborted, deadline } from './deadline.ts';
import { DockerUnavailableError, PushFailedError } from './errors.ts';
import { inspectImage } from './inspect-image.ts';
import type { ProgressListener } from './progress.ts';
import { errorText, isFailure, layerProgress, readMessages, type EngineMessage } from './stream.ts';

export interface PushImageOptions {
  /** Repository with its registry: `127.0.0.1:5000/ns/fn`. */
  repository: string;
  tag: string;
  auth?: EngineAuth;
  /** The docker config key `auth` came from, named in errors (never the secret). */
  credentialKey?: string;
  onProgress?: ProgressListener;
  signal?: AbortSignal;
  timeoutMs?: number;
  endpoint?: string;
}

export interface PushedImage {
  /** `sha256:...` of the pushed manifest. */
  digest: string;
  size?: number;
}

export async function pushImage(docker: Dockerode, options: PushImageOptions): Promise<PushedImage> {
  const name = `${options.repository}:${options.tag}`;
  const endpoint = options.endpoint ?? 'the Docker Engine';
  const { signal, timedOut } = deadline(options.signal, options.timeoutMs);
  let digest: string | undefined;
  let size: number | undefined;
  let failure: EngineMessage | undefined;
  const onMessage = (message: EngineMessage) => {
    if (isFailure(message)) {
      failure ??= message;
      return;
    }
    if (typeof message.aux?.Digest === 'string') {
      digest = message.aux.Digest;
      if (typeof message.aux.Size === 'number') size = message.aux.Size;
    }
    const progress = layerProgress('push', message);
    if (progress) options.onProgress?.(progress);
  };
  try {
    const response = (await docker.getImage(options.repository).push({
      tag: options.tag,
      abortSignal: signal,
      authconfig: { base64: encodeRegistryAuth(options.auth) },
    } as unknown as Dockerode.ImagePushOptions)) as unknown as Readable;
    await readMessages(response, onMessage, signal);
  } catch (error) {
    if (signal.aborted) throw aborted(timedOut(), options.timeoutMs, 'push', error);
    const status = (error as { statusCode?: number }).statusCode;
    if (status) throw new PushFailedError('infrastructure', `${endpoint} refused to push ${name} (HTTP ${status}): ${(error as Error).message}`, { cause: error, details: { image: name, status } });
    throw new DockerUnavailableError(`the push of ${name} through ${endpoint} broke off: ${(error as Error).message}`, { cause: error, details: { endpoint, image: name } });
  }
  if (failure) throw pushFailure(failure, name, options.repository, options.credentialKey);
  if (!digest) throw new PushFailedError('infrastructure', `the push of ${name} ended without the daemon reporting the pushed digest`, { details: { image: name } });
  return size === undefined ? { digest } : { digest, size };
}

function pushFailure(failure: EngineMessage, name: string, repository: string, credentialKey: string | undefined): PushFailedError {
  const message = errorText(failure);
  const registry = repository.split('/')[0] ?? repository;
  const details = { image: name, registry, credentialKey, daemonMessage: message };
  if (/unauthori[sz]ed|authentication required|denied|no basic auth credentials|insufficient_scope|forbidden/i.test(message)) {
    const tried = credentialKey
      ? `with the credential "${credentialKey}" of the docker config`
      : 'without a credential (no docker config entry matches this registry)';
    return new PushFailedError('user', `the registry ${registry} denied the push of ${name} ${tried}: ${message}. Give a credential that may push to ${repository}.`, { details });
  }
  return new PushFailedError('infrastructure', `pushing ${name} to ${registry} failed: ${message}`, { details });
}

/**
 * Removes a local tag (and the image, once no tag is left). A tag that is already gone is fine.
 * The untagged parent layers stay (noprune): they are the build cache of the function's next
 * version — the runtime env and the copied dependencies — as `docker build` leaves them too;
 * `docker image prune` reclaims them. With `signal`, a daemon that does not answer is asked again
 * until it fires (see retryCleanup).
 */
export async function removeImage(docker: Dockerode, name: string, signal?: AbortSignal): Promise<boolean> {
  let removed = false;
  const remove = async (abortSignal?: AbortSignal) => {
    await docker.getImage(name).remove({ noprune: true, ...(abortSignal ? { abortSignal } : {}) });
    removed = true;
  };
  if (signal) await retryCleanup(remove, signal);
  else {
    try {
      await remove();
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode !== 404) throw error;
    }
  }
  return removed;
}

/** `repository:tag` now names `imageId` in the daemon. */
export async function tagImage(docker: Dockerode, imageId: string, repository: string, tag: string, signal: AbortSignal, endpoint = 'the Docker Engine'): Promise<void> {
  try {
    await docker.getImage(imageId).tag({ repo: repository, tag, abortSignal: signal } as Dockerode.ImageTagOptions);
  } catch (error) {
    if (signal.aborted) throw error;
    throw new DockerUnavailableError(`${endpoint} could not tag ${imageId} as ${repository}:${tag}: ${(error as Error).message}`, { cause: error, details: { endpoint, image: `${repository}:${tag}` } });
  }
}

/** The image ID a local name points at, undefined when there is none. */
export async function localImageId(docker: Dockerode, name: string, signal: AbortSignal): Promise<string | undefined> {
  return (await inspectImage(docker, name, signal))?.Id;
}
