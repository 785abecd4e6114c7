// Waiting for a build Job to finish: list + watch from the listed resourceVersion, started again when
// the watch drops, is refused (410 Gone: its resourceVersion expired) or brings nothing for stallMs;
// between watches, a pod whose image cannot be pulled fails the wait at once.
import { Watch, type V1Job, type V1Pod } from '@kubernetes/client-node';
import { sleep } from '../sleep.ts';
import { BuilderError } from '../errors.ts';
import { kubernetesError } from './errors.ts';
import { deleteJob, finished, podsOf, type JobContext } from './job-context.ts';
import { BuildJobError, PHASE_STEPS } from './job-outcome.ts';

/** Container waiting reasons that do not go away by waiting. */
const UNSTARTABLE = new Set(['ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull']);

/** Waits until the Job with this name finishes; undefined when it disappeared. */
export async function waitForJob(context: JobContext): Promise<V1Job | undefined> {
  const { batch, name, namespace, where, deadline, signal, log } = context;
  let quickEnds = 0;
  for (;;) {
    if (signal?.aborted) throw signal.reason;
    if (Date.now() > deadline) {
      throw new BuilderError('E_JOB_TIMEOUT', 'infrastructure', `${where} did not finish in time; see "kubectl describe job -n ${namespace} ${name}"`, {
        details: { job: name, namespace },
      });
    }
    let listed;
    try {
      listed = await batch.listNamespacedJob({ namespace, fieldSelector: `metadata.name=${name}` });
    } catch (error) {
      const failure = kubernetesError(error, `list ${where}`);
      if (failure.kind === 'user') throw failure;
      log({ event: 'job-list-retry', job: name, error: failure.message });
      await sleep(1000, signal);
      continue;
    }
    const job = listed.items[0];
    if (job === undefined) return undefined;
    if (finished(job)) return job;
    const watchStarted = Date.now();
    const outcome = await watchOnce(context, listed.metadata?.resourceVersion ?? '0');
    if (outcome === 'deleted') return undefined;
    if (typeof outcome === 'object') return outcome;
    log({ event: 'job-watch-restart', job: name, why: outcome });
    // A watch refused over and over must not turn into a busy loop against the API server.
    quickEnds = Date.now() - watchStarted < 1000 ? quickEnds + 1 : 0;
    if (quickEnds > 1) await sleep(Math.min(5000, 250 * 2 ** quickEnds), signal);
    // A Job whose pod cannot start changes no status until its deadline: look at the pods.
    await checkPodsCanStart(context, job);
  }
}

/** One watch from `resourceVersion`: the finished Job, 'deleted', or why it ended (then re-list). */
function watchOnce(context: JobContext, resourceVersion: string): Promise<V1Job | 'deleted' | string> {
  const { kubeConfig, name, namespace, deadline, stallMs, signal } = context;
  const watch = new Watch(kubeConfig);
  return new Promise((resolve) => {
    let settled = false;
    let abort: AbortController | undefined;
    let stallTimer: NodeJS.Timeout | undefined;
    const finish = (value: V1Job | 'deleted' | string) => {
      if (settled) return;
      settled = true;
      if (stallTimer) clearTimeout(stallTimer);
      signal?.removeEventListener('abort', onAbort);
      abort?.abort();
      resolve(value);
    };
    const onAbort = () => finish('aborted');
    const armStall = () => {
      if (stallTimer) clearTimeout(stallTimer);
      const remaining = Math.max(0, deadline - Date.now());
      stallTimer = setTimeout(() => finish('stalled'), Math.min(stallMs, remaining));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    armStall();
    watch
      .watch(
        `/apis/batch/v1/namespaces/${encodeURIComponent(namespace)}/jobs`,
        { fieldSelector: `metadata.name=${name}`, resourceVersion, allowWatchBookmarks: true, timeoutSeconds: Math.max(1, Math.ceil(stallMs / 1000) * 5) },
        (type: string, object: Record<string, any>) => {
          armStall();
          if (type === 'ERROR') {
            // 410 Expired: the resourceVersion is too old; anything else: start over from a list.
            finish(`error ${object?.code ?? ''} ${object?.reason ?? ''}`.trim());
            return;
          }
          if (type === 'BOOKMARK') return;
          if (type === 'DELETED') {
            finish('deleted');
            return;
          }
          const job = object as V1Job;
          if (finished(job)) finish(job);
        },
        (error: unknown) => finish(error ? `dropped (${(error as Error)?.message ?? String(error)})` : 'closed'),
      )
      .then((controller) => {
        abort = controller;
        if (settled) controller.abort();
      })
      .catch((error: unknown) => finish(`watch failed (${(error as Error)?.message ?? String(error)})`));
  });
}

/**
 * Fails at once, and removes the Job so a corrected config can create it anew, when the builder
 * image cannot be pulled: otherwise the pod would wait in ImagePullBackOff until the deadline.
 */
async function checkPodsCanStart(context: JobContext, job: V1Job): Promise<void> {
  const { name, namespace, where } = context;
  let pods: V1Pod[];
  try {
    pods = await podsOf(context, job);
  } catch {
    return; // the next round will see
  }
  for (const pod of pods) {
    for (const status of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
      const waiting = status.state?.waiting;
      if (!waiting?.reason || !UNSTARTABLE.has(waiting.reason)) continue;
      const image = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === status.name)?.image;
      try {
        await deleteJob(context, job);
      } catch {
        // already gone or replaced: either way it no longer blocks a retry
      }
      const phase = PHASE_STEPS.get(status.name);
      const what =
        phase === undefined
          ? `the builder image ${image ?? ''}`
          : `the ${phase} image ${image ?? ''} of the function's runtime`;
      const check =
        phase === undefined
          ? 'check kubeless-config "builder-image" and "builder-image-secret"'
          : `check kubeless-config "runtime-images" and that the registry Secret holds credentials for that image's registry`;
      throw new BuildJobError('user', `${where}: ${what} cannot be started (${waiting.reason}: ${waiting.message ?? 'no message'}); ${check}`, {
        job: name,
        namespace,
        pod: pod.metadata?.name,
        container: status.name,
        reason: waiting.reason,
        image,
      });
    }
  }
}
