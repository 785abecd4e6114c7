// POST /build with an in-memory context: the classic builder, rm + forcerm so that a failed step
// leaves no container, base images pulled by the daemon with the credentials in X-Registry-Config.
// The HTTP status is 200 even when a step fails, so the verdict comes from the message stream.
import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { encodeRegistryConfig, type EngineAuth } from './auth.ts';
import { removeContainer } from './cleanup.ts';
import { aborted, deadline } from './deadline.ts';
import { BuilderError } from '../errors.ts';
import { BuildFailedError, DockerUnavailableError, killedBySignal } from './errors.ts';
import { redactor, type Redactor } from '../redact.ts';
import type { ProgressListener } from './progress.ts';
import { pullFailure } from './pull-failure.ts';
import { errorText, isFailure, layerProgress, OUTPUT_TAIL_LINES, readMessages, shownTail, type EngineMessage } from './stream.ts';

export interface BuildImageOptions {
  /** The build context: a tar holding the Dockerfile and everything it copies. */
  context: Buffer;
  /** Path of the Dockerfile inside the context. */
  dockerfile?: string;
  /** Names the built image is tagged with (`host/ns/fn:tag`). */
  tags: string[];
  labels?: Record<string, string>;
  /** Credentials for the registries the FROM images come from, by registry host. */
  registryAuths?: Record<string, EngineAuth>;
  /** `networkmode` of the RUN containers; the daemon's default (bridge) when unset. */
  networkMode?: string;
  onProgress?: ProgressListener;
  signal?: AbortSignal;
  /** Limit for the whole build; the request is cancelled when it passes. */
  timeoutMs?: number;
  /**
   * Bounds the removal of a step's container left by a failed or cancelled build (retried while
   * the daemon does not answer). Default: 10 s from the failure.
   */
  cleanupSignal?: AbortSignal;
  /** Where the daemon is, for messages. */
  endpoint?: string;
  /** Told about a leftover this build could not remove in time (`what` names it). */
  onCleanupFailed?: (what: string, error: unknown) => void;
  /** Applied to every line of output, instruction and daemon message before it is shown or kept. */
  redact?: Redactor;
}

export interface BuiltImage {
  /** `sha256:...` of the final stage. */
  imageId: string;
  /** Everything the build printed, line by line (capped), e.g. to see which steps used the cache. */
  output: string[];
  steps: number;
}

const OUTPUT_LIMIT = 5_000;

interface Step {
  step: number;
  steps: number;
  instruction: string;
  output: string[];
}

export async function buildImage(docker: Dockerode, options: BuildImageOptions): Promise<BuiltImage> {
  const endpoint = options.endpoint ?? 'the Docker Engine';
  const { signal, timedOut } = deadline(options.signal, options.timeoutMs);
  const output: string[] = [];
  let step: Step | undefined;
  let partial = '';
  let imageId: string | undefined;
  let failure: EngineMessage | undefined;

  let container: string | undefined;
  const redact = options.redact ?? redactor([]);
  const line = (raw: string) => {
    // stderr of RUN steps arrives wrapped in colour codes.
    const text = redact(raw.replace(/\x1b\[[0-9;]*m/g, ''));
    const running = /^ ---> Running in ([0-9a-f]+)$/.exec(text);
    if (running) container = running[1];
    if (container && text === `Removing intermediate container ${container}`) container = undefined;
    const stepMatch = /^Step (\d+)\/(\d+) : (.*)$/.exec(text);
    if (stepMatch) {
      step = { step: Number(stepMatch[1]), steps: Number(stepMatch[2]), instruction: stepMatch[3] ?? '', output: [] };
      options.onProgress?.({ kind: 'step', step: step.step, steps: step.steps, instruction: step.instruction });
    } else {
      if (!/^ ---> |^Removing intermediate container /.test(text)) step?.output.push(text);
      if (step && step.output.length > OUTPUT_TAIL_LINES * 4) step.output.splice(0, step.output.length - OUTPUT_TAIL_LINES);
      options.onProgress?.({ kind: 'output', line: text });
    }
    if (output.length < OUTPUT_LIMIT) output.push(text);
  };
  const onMessage = (message: EngineMessage) => {
    if (isFailure(message)) {
      failure ??= message;
      return;
    }
    if (typeof message.stream === 'string') {
      partial += message.stream;
      const lines = partial.split(/\r?\n|\r/);
      partial = lines.pop() ?? '';
      for (const text of lines) if (text.trim()) line(text);
    }
    if (typeof message.aux?.ID === 'string') imageId = message.aux.ID;
    const progress = layerProgress('pull', message);
    if (progress) options.onProgress?.(progress);
  };

  const query: Record<string, unknown> = {
    t: options.tags,
    dockerfile: options.dockerfile ?? 'Dockerfile',
    labels: options.labels ?? {},
    rm: true,
    forcerm: true,
    version: '1',
    abortSignal: signal,
    registryconfig: { base64: encodeRegistryConfig(options.registryAuths ?? {}) },
  };
  if (options.networkMode) query.networkmode = options.networkMode;

  try {
    try {
      const response = (await docker.buildImage(options.context as unknown as NodeJS.ReadableStream, query as Dockerode.ImageBuildOptions)) as unknown as Readable;
      await readMessages(response, onMessage, signal);
    } catch (error) {
      if (signal.aborted) throw aborted(timedOut(), options.timeoutMs, 'build', error);
      const status = (error as { statusCode?: number }).statusCode;
      if (status) {
        throw new BuildFailedError('infrastructure', `${endpoint} rejected the build request (HTTP ${status}): ${(error as Error).message}`, { cause: error, details: { endpoint, status } });
      }
      throw new DockerUnavailableError(`the build on ${endpoint} broke off: ${(error as Error).message}`, { cause: error, details: { endpoint, step: step?.instruction } });
    }
    if (partial.trim()) line(partial);
    if (failure) throw buildFailure(failure, step, redact);
  } catch (error) {
    // A step's container outlives a build whose daemon died or restarted, or whose request was
    // cancelled before the daemon noticed; the id is known from "Running in".
    if (container) {
      await removeContainer(docker, container, options.cleanupSignal).catch((cleanupError: unknown) => {
        if (error instanceof BuilderError) error.details.leftContainer = container;
        options.onCleanupFailed?.(`container ${container}`, cleanupError);
      });
    }
    throw error;
  }
  if (!imageId) {
    const built = output.map((l) => /^Successfully built ([0-9a-f]+)$/.exec(l)?.[1]).filter(Boolean).pop();
    if (!built) throw new BuildFailedError('infrastructure', `the build on ${endpoint} ended without reporting an image`, { details: { outputTail: output.slice(-OUTPUT_TAIL_LINES) } });
    imageId = built;
  }
  return { imageId, output, steps: step?.steps ?? 0 };
}

function buildFailure(failure: EngineMessage, step: Step | undefined, redact: Redactor): Error {
  const message = redact(errorText(failure));
  const tail = step?.output.slice(-OUTPUT_TAIL_LINES) ?? [];
  const where = step ? `step ${step.step}/${step.steps} \`${clip(step.instruction)}\`` : 'the build';
  const details = { step: step?.instruction, stepNumber: step?.step, outputTail: tail, daemonMessage: message };
  const from = step && /^FROM\s/i.test(step.instruction) ? step.instruction.split(/\s+/)[1] : undefined;
  if (from) return pullFailure(from, message, { what: 'base image', details });
  const shown = shownTail(tail);
  // A RUN step that exits non-zero reports its exit code; that is the function's own install or
  // compile command failing, which will fail the same way on every retry, unless a signal killed it.
  const exitCode = failure.errorDetail?.code;
  const signal = killedBySignal(exitCode);
  if (signal !== undefined) {
    return new BuildFailedError('infrastructure', `${where} was killed by signal ${signal} (exit code ${exitCode}): the daemon stopped or restarted, or the step ran out of memory; retry: ${message}${shown}`, {
      details: { ...details, exitCode, signal },
    });
  }
  if (exitCode !== undefined && exitCode !== 0) {
    return new BuildFailedError('user', `${where} failed with exit code ${exitCode}: ${message}${shown}`, { details: { ...details, exitCode } });
  }
  return new BuildFailedError('infrastructure', `${where} failed: ${message}${shown}`, { details });
}

function clip(text: string): string {
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
}
