// Runs one build step (an install or compile command) in a container of its phase image on the
// Docker Engine, the way Kubeless's init containers ran it: the step's files are put into
// /kubeless (writable for the image's own user), `sh -c <command>` runs there with the step's env,
// and /kubeless is handed back as a tar. Only that step runs on the daemon; the image is made elsewhere.
// The container is removed whatever happens, also when the call is cancelled or the daemon stops
// answering mid-step: every request is bound to the caller's signal.
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import type { EngineAuth } from './auth.ts';
import { removeContainer } from './cleanup.ts';
import { BuildFailedError, DockerUnavailableError, killedBySignal } from './errors.ts';
import { redactor, type Redactor } from '../redact.ts';
import { inspectImage } from './inspect-image.ts';
import type { ProgressListener } from './progress.ts';
import { pullFailure } from './pull-failure.ts';
import { errorText, isFailure, layerProgress, OUTPUT_TAIL_LINES, readMessages, shownTail, type EngineMessage } from './stream.ts';

export interface RunStepOptions {
  /** Pinned phase image, `host/repo@sha256:...`. */
  image: string;
  command: string;
  env: Record<string, string>;
  /** A tar of what /kubeless holds before the step, entries named `kubeless/...`. */
  input: Buffer;
  networkMode?: string | undefined;
  /** What the step is, for messages: "install", "compile". */
  step: string;
  /** Cancels every request of the step, the wait for its end included. */
  signal?: AbortSignal | undefined;
  /** Bounds the removal of the container (retried while the daemon does not answer); default 10 s from when it starts. */
  cleanupSignal?: AbortSignal | undefined;
  endpoint?: string | undefined;
  /** Applied to the step's output before it is returned or put in an error (hides the function's env values). */
  redact?: Redactor | undefined;
}

/** Pulls `image` unless the daemon has it; returns the user its config runs as ('' = root). */
export async function ensureImage(
  docker: Dockerode,
  image: string,
  options: {
    /** Credentials for the image's registry, when the daemon has to pull it. */
    auth?: EngineAuth | undefined;
    /** The image's part in the build, for messages ("image of the install step"). */
    what?: string | undefined;
    /** Receives the pull's layer progress. */
    onProgress?: ProgressListener | undefined;
    /** Cancels the lookup and the pull. */
    signal?: AbortSignal | undefined;
  },
): Promise<string> {
  const userOf = async () => {
    const info = await inspectImage(docker, image, options.signal);
    return info === undefined ? undefined : (info.Config?.User ?? '');
  };
  const present = await userOf();
  if (present !== undefined) return present;
  const at = image.lastIndexOf('@');
  let stream: Readable;
  try {
    stream = (await docker.createImage(options.auth ?? {}, { fromImage: image.slice(0, at), tag: image.slice(at + 1), abortSignal: options.signal })) as unknown as Readable;
  } catch (error) {
    if (options.signal?.aborted) throw error;
    // A pull that fails before any progress (no such manifest, credentials refused) is the request's
    // own HTTP error, not a message of the stream; its text is the same.
    const refused = error as { statusCode?: number; json?: { message?: string } };
    if (refused.statusCode !== undefined) throw pullFailure(image, refused.json?.message ?? (error as Error).message, { what: options.what });
    throw new DockerUnavailableError(`the Docker Engine could not be asked to pull ${image}: ${(error as Error).message}`, { cause: error, details: { image } });
  }
  let failure: EngineMessage | undefined;
  await readMessages(
    stream,
    (message) => {
      if (isFailure(message)) failure ??= message;
      else {
        const progress = layerProgress('pull', message);
        if (progress) options.onProgress?.(progress);
      }
    },
    options.signal,
  );
  if (failure) throw pullFailure(image, errorText(failure), { what: options.what });
  return (await userOf()) ?? '';
}

/**
 * Runs the step, on an image the caller has made present (ensureImage), and returns /kubeless
 * afterwards as a tar stream; read it, then call remove() for the container. Every request to the
 * daemon, the wait for the step's end included, is cancelled when `signal` fires; the container is
 * then force-removed (which also stops the step), within `cleanupSignal`.
 */
export async function runStep(docker: Dockerode, options: RunStepOptions): Promise<{ output: Readable; remove: () => Promise<void> }> {
  const endpoint = options.endpoint ?? 'the Docker Engine';
  const abortSignal = options.signal;
  abortSignal?.throwIfAborted();
  // Named by us, so that it can be removed even when the create request is cut off after the daemon made it.
  const name = `fib-step-${randomBytes(8).toString('hex')}`;
  const remove = () => removeContainer(docker, name, options.cleanupSignal).catch(() => undefined);
  try {
    const container = await docker.createContainer({
      name,
      Image: options.image,
      Cmd: ['sh', '-c', options.command],
      Env: Object.entries(options.env).map(([variable, value]) => `${variable}=${value}`),
      WorkingDir: '/kubeless',
      Labels: {},
      HostConfig: { ...(options.networkMode ? { NetworkMode: options.networkMode } : {}) },
      abortSignal,
    });
    await container.putArchive(options.input, { path: '/', abortSignal });
    await container.start({ abortSignal });
    const { StatusCode: status } = (await container.wait({ abortSignal })) as { StatusCode: number };
    abortSignal?.throwIfAborted();
    if (status !== 0) {
      const logs = (await container.logs({ stdout: true, stderr: true, follow: false, abortSignal })) as unknown as Buffer;
      const tail = (options.redact ?? redactor([]))(demultiplex(logs)).split('\n').filter(Boolean).slice(-OUTPUT_TAIL_LINES);
      // The function's own install or compile command failed: it fails the same way on a retry,
      // unless a signal killed it (the daemon restarting, the OOM killer).
      const signal = killedBySignal(status);
      throw new BuildFailedError(signal === undefined ? 'user' : 'infrastructure', `the ${options.step} step \`${options.command}\` in ${options.image} exited with code ${status} on ${endpoint}${shownTail(tail)}`, {
        details: { step: options.step, image: options.image, exitCode: status, outputTail: tail },
      });
    }
    const output = (await container.getArchive({ path: '/kubeless', abortSignal })) as unknown as Readable;
    return { output, remove };
  } catch (error) {
    await remove();
    if (error instanceof BuildFailedError || abortSignal?.aborted) throw error;
    throw new DockerUnavailableError(`the ${options.step} step in ${options.image} could not be run on ${endpoint}: ${(error as Error).message}`, { cause: error, details: { step: options.step } });
  }
}

/** The text of a non-TTY container's log stream (8-byte frame headers stripped). */
function demultiplex(data: Buffer | string): string {
  if (typeof data === 'string') return data;
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= data.length) {
    const size = data.readUInt32BE(offset + 4);
    parts.push(data.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}
