// A finished build Job's outcome, read from its pods: the result a succeeded pod left in its
// termination message, or the BuildJobError a failed one explains (decisive container, exit code,
// the builder's reported error, the log tail).
import type { V1ContainerStatus, V1Job, V1Pod } from '@kubernetes/client-node';
import { BuilderError, EXIT_USER_ERROR, type ErrorKind } from '../errors.ts';
import { BUILD_CONTAINER_NAME, STEP_CONTAINER_NAMES } from './contract.ts';
import { condition, podsOf, type JobContext } from './job-context.ts';
import { decodeJobFailure, decodeJobResult, type JobFailure, type JobResult } from './termination-message.ts';

/** The build Job failed; `kind` says whether running it again can help. */
export class BuildJobError extends BuilderError {
  constructor(kind: ErrorKind, message: string, details: Record<string, unknown>) {
    super('E_BUILD_JOB_FAILED', kind, message, { details });
  }
}

const LOG_TAIL_LINES = 20;
/** The daemonless Job's init containers that run a runtime phase's command, by name. */
export const PHASE_STEPS = new Map<string, string>([
  [STEP_CONTAINER_NAMES.installation, 'installation'],
  [STEP_CONTAINER_NAMES.compilation, 'compilation'],
]);

/** The container whose end decided the pod's: the init container that failed, else the build container. */
function decisive(pod: V1Pod): V1ContainerStatus | undefined {
  const failedStep = pod.status?.initContainerStatuses?.find((c) => (c.state?.terminated?.exitCode ?? 0) !== 0);
  return failedStep ?? pod.status?.containerStatuses?.find((c) => c.name === BUILD_CONTAINER_NAME) ?? pod.status?.containerStatuses?.[0];
}

function terminated(pod: V1Pod) {
  return decisive(pod)?.state?.terminated;
}

async function logTail(context: JobContext, pod: V1Pod, container: string): Promise<string | undefined> {
  try {
    const text = await context.core.readNamespacedPodLog({ name: pod.metadata!.name!, namespace: context.namespace, container, tailLines: LOG_TAIL_LINES });
    return typeof text === 'string' ? text : String(text);
  } catch {
    return undefined; // the log is a diagnostic extra: its absence must not hide the failure
  }
}

/** The result of the latest succeeded pod that left one; undefined when none did. */
export async function jobResult(context: JobContext, job: V1Job): Promise<JobResult | undefined> {
  const pods = await podsOf(context, job);
  for (const pod of pods.reverse()) {
    if (pod.status?.phase !== 'Succeeded') continue;
    const message = terminated(pod)?.message;
    if (!message) continue;
    const result = decodeJobResult(message);
    if (result !== undefined) return result;
  }
  return undefined;
}

/** Why a Failed Job failed, from its latest failed pod. */
export async function jobFailure(context: JobContext, job: V1Job): Promise<BuildJobError> {
  const { name, namespace, where } = context;
  const failed = condition(job, 'Failed') ?? {};
  const pods = (await podsOf(context, job)).filter((pod) => pod.status?.phase === 'Failed');
  const pod = pods[pods.length - 1];
  const details: Record<string, unknown> = { job: name, namespace, reason: failed.reason, jobMessage: failed.message, attempts: pods.length };
  let kind: ErrorKind = 'infrastructure';
  let summary = failed.message ?? failed.reason ?? 'the Job failed';
  if (pod !== undefined) {
    const container = decisive(pod)?.name ?? BUILD_CONTAINER_NAME;
    const state = terminated(pod);
    details.pod = pod.metadata?.name;
    details.container = container;
    details.exitCode = state?.exitCode;
    const phase = PHASE_STEPS.get(container);
    // An install or compile command that fails by itself fails again; one the node killed (≥ 128) may not.
    if (state?.exitCode === EXIT_USER_ERROR || (phase !== undefined && state?.exitCode !== undefined && state.exitCode < 128)) kind = 'user';
    const reported: JobFailure['error'] | undefined = decodeJobFailure(state?.message ?? '');
    if (reported?.message) {
      summary = reported.message;
      details.code = reported.code;
      if (reported.kind === 'user' || reported.kind === 'infrastructure') kind = reported.kind;
    } else if (state?.message) {
      summary = state.message.trim().split('\n').slice(-3).join(' | ');
    }
    if (phase !== undefined) {
      const command = pod.spec?.initContainers?.find((c) => c.name === container)?.command?.at(-1);
      summary = `the ${phase} step (${command ?? 'its command'}) exited with code ${state?.exitCode ?? 'unknown'}: ${summary}`;
    }
    details.logTail = await logTail(context, pod, container);
  }
  const because = failed.reason ? ` (${failed.reason})` : '';
  return new BuildJobError(kind, `${where} failed${because}: ${summary}`, details);
}
