// Runs one build step (an install or compile command) in a container of its phase image on the
// Docker Engine, the way Kubeless's init containers ran it: the step's files are put into
// /kubeless (writable for the image's own user), `sh -c <command>` runs there with the step's env,
// and /kubeless is handed back as a tar. Only that step runs on the daemon; the image is made elsewhere.
// The container is removed whatever happens, also when the call is cancelled.
import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import type { EngineAuth } from './auth.ts';
import { BaseImageError, BuildFailedError, DockerUnavailableError, killedBySignal } from './errors.ts';
import type { Redactor } from '../redact.ts';
import type { ProgressListener } from './progress.ts';
import { errorText, readMessages, type EngineMessage } from './stream.ts';

export interface RunStepOptions {
  /** Pinned phase image, `host/repo@sha256:...`. */
  image: string;
  command: string;
  env: Record<string, string>;
  /** A tar of what /kubeless holds before the step, entries named `kubeless/...`. */
  input: Buffer;
  networkMode?: string | undefined;
  /** Labels of the step's container. */
  labels?: Record<string, string>;
  /** What the step is, for messages: "install", "compile". */
  step: string;
  onProgress?: ProgressListener | undefined;
  signal?: AbortSignal | undefined;
  endpoint?: string | undefined;
  /** Applied to the step's output before it is returned or put in an error (hides the function's env values). */
  redact?: Redactor | undefined;
}

const TAIL_LINES = 25;

/** Pulls `image` unless the daemon has it; returns the user its config runs as ('' = root). */
export async function ensureImage(
  docker: Dockerode,
  image: string,
  /** auth: credentials for the image's registry, when the daemon has to pull it. */
  options: { auth?: EngineAuth | undefined } & Pick<RunStepOptions, 'onProgress' | 'signal'>,
): Promise<string> {
  const userOf = () =>
    docker.getImage(image).inspect().then(
      (info: { Config?: { User?: string } }) => info.Config?.User ?? '',
      (error: { statusCode?: number }) => {
        if (error.statusCode === 404) return undefined;
        throw error;
      },
    );
  const present = await userOf();
  if (present !== undefined) return present;
  const at = image.lastIndexOf('@');
  const stream = (await docker.createImage(options.auth ?? {}, { fromImage: image.slice(0, at), tag: image.slice(at + 1), abortSignal: options.signal })) as unknown as Readable;
  let failure: EngineMessage | undefined;
  await readMessages(
    stream,
    (message) => {
      if (message.error !== undefined || message.errorDetail !== undefined) failure = message;
      else if (message.id !== undefined && message.status !== undefined) {
        options.onProgress?.({ kind: 'pull', layer: message.id, status: message.status, current: message.progressDetail?.current, total: message.progressDetail?.total });
      }
    },
    options.signal,
  );
  if (failure) {
    const message = errorText(failure);
    const denied = /unauthorized|denied|authentication required|forbidden/i.test(message);
    const missing = /not found|manifest unknown|does not exist|name unknown/i.test(message);
    if (missing) throw new BaseImageError('E_BASE_IMAGE_NOT_FOUND', 'user', `the image ${image} does not exist in its registry (${message}). Check the runtime catalog entry that names it.`, { details: { image } });
    throw new BaseImageError('E_BASE_IMAGE_PULL_FAILED', denied ? 'user' : 'infrastructure', `pulling ${image} failed: ${message}`, { details: { image } });
  }
  return (await userOf()) ?? '';
}

/**
 * Runs the step, on an image the caller has made present (ensureImage), and returns /kubeless
 * afterwards as a tar stream; read it, then call remove() for the container.
 */
export async function runStep(docker: Dockerode, options: RunStepOptions): Promise<{ output: Readable; remove: () => Promise<void> }> {
  const endpoint = options.endpoint ?? 'the Docker Engine';
  options.signal?.throwIfAborted();
  const container = await docker.createContainer({
    Image: options.image,
    Cmd: ['sh', '-c', options.command],
    Env: Object.entries(options.env).map(([name, value]) => `${name}=${value}`),
    WorkingDir: '/kubeless',
    Labels: options.labels ?? {},
    HostConfig: { ...(options.networkMode ? { NetworkMode: options.networkMode } : {}) },
  });
  const remove = () => container.remove({ force: true }).then(() => undefined, () => undefined);
  const onAbort = () => void container.kill().catch(() => undefined);
  try {
    await container.putArchive(options.input, { path: '/' });
    options.signal?.addEventListener('abort', onAbort, { once: true });
    await container.start();
    const { StatusCode: status } = (await container.wait()) as { StatusCode: number };
    options.signal?.throwIfAborted();
    if (status !== 0) {
      const logs = (await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
      const tail = (options.redact ?? ((text: string) => text))(demultiplex(logs)).split('\n').filter(Boolean).slice(-TAIL_LINES);
      // The function's own install or compile command failed: it fails the same way on a retry,
      // unless a signal killed it (the daemon restarting, the OOM killer).
      const signal = killedBySignal(status);
      throw new BuildFailedError(signal === undefined ? 'user' : 'infrastructure', `the ${options.step} step \`${options.command}\` in ${options.image} exited with code ${status} on ${endpoint}${tail.length ? `\n--- last output of that step ---\n${tail.join('\n')}` : ''}`, {
        details: { step: options.step, image: options.image, exitCode: status, outputTail: tail },
      });
    }
    const output = (await container.getArchive({ path: '/kubeless' })) as unknown as Readable;
    return { output, remove };
  } catch (error) {
    await remove();
    if (error instanceof BuildFailedError || error instanceof BaseImageError || options.signal?.aborted) throw error;
    throw new DockerUnavailableError(`the ${options.step} step in ${options.image} could not be run on ${endpoint}: ${(error as Error).message}`, { cause: error, details: { step: options.step } });
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
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
