// What every part of the Job runner (job-create, job-watch, job-outcome) shares for one run: the API
// clients, the Job's names, the deadline and the log; plus the small Job and pod readings they all need.
import { BatchV1Api, CoreV1Api, type KubeConfig, type V1Job, type V1Pod } from '@kubernetes/client-node';
import { kubernetesError } from './errors.ts';
import { ANNOTATION_TAG, type JobManifests } from './manifest.ts';

export type JobLog = (event: Record<string, unknown>) => void;

export interface JobContext {
  kubeConfig: KubeConfig;
  batch: BatchV1Api;
  core: CoreV1Api;
  manifests: JobManifests;
  /** The Job's name, which its input Secret shares. */
  name: string;
  namespace: string;
  /** `Job namespace/name`, for messages. */
  where: string;
  /** The tag the Job builds (its annotation); undefined for a manifest made without one. */
  tag: string | undefined;
  /** Epoch milliseconds after which waiting gives up. */
  deadline: number;
  /** A watch that brings no event for this long is replaced by a fresh list + watch. */
  stallMs: number;
  signal: AbortSignal | undefined;
  log: JobLog;
}

export function jobContext(
  kubeConfig: KubeConfig,
  manifests: JobManifests,
  options: { timeoutMs?: number | undefined; stallMs?: number | undefined; signal?: AbortSignal | undefined; log?: JobLog | undefined },
): JobContext {
  const name = manifests.job.metadata!.name!;
  const namespace = manifests.job.metadata!.namespace!;
  const deadlineSeconds = manifests.job.spec?.activeDeadlineSeconds ?? 1800;
  return {
    kubeConfig,
    batch: kubeConfig.makeApiClient(BatchV1Api),
    core: kubeConfig.makeApiClient(CoreV1Api),
    manifests,
    name,
    namespace,
    where: `Job ${namespace}/${name}`,
    tag: manifests.job.metadata!.annotations?.[ANNOTATION_TAG],
    deadline: Date.now() + (options.timeoutMs ?? deadlineSeconds * 1000 + 120_000),
    stallMs: options.stallMs ?? 60_000,
    signal: options.signal,
    log: options.log ?? (() => {}),
  };
}

export function condition(job: V1Job, type: string): { reason?: string | undefined; message?: string | undefined } | undefined {
  const found = job.status?.conditions?.find((c) => c.type === type && c.status === 'True');
  return found ? { reason: found.reason, message: found.message } : undefined;
}

export function finished(job: V1Job): 'Complete' | 'Failed' | undefined {
  if (condition(job, 'Complete')) return 'Complete';
  if (condition(job, 'Failed')) return 'Failed';
  return undefined;
}

/** Deletes this Job; the uid precondition keeps two callers from deleting each other's fresh Job. */
export function deleteJob(context: JobContext, job: V1Job): Promise<unknown> {
  const { batch, name, namespace } = context;
  return batch.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background', body: { propagationPolicy: 'Background', preconditions: { uid: job.metadata!.uid! } } });
}

/** The pods of this Job (not of an earlier one of the same name), oldest first. */
export async function podsOf(context: JobContext, job: V1Job): Promise<V1Pod[]> {
  const { core, name, namespace, where } = context;
  try {
    const pods = await core.listNamespacedPod({ namespace, labelSelector: `job-name=${name}` });
    return pods.items
      .filter((pod) => pod.metadata?.ownerReferences?.some((owner) => owner.uid === job.metadata?.uid) ?? true)
      .sort((a, b) => new Date(a.metadata?.creationTimestamp ?? 0).getTime() - new Date(b.metadata?.creationTimestamp ?? 0).getTime());
  } catch (error) {
    throw kubernetesError(error, `list pods of ${where}`);
  }
}
