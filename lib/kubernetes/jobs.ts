// Running one build Job to its end: create it (or join the one already running for the same tag),
// wait for it through a watch that survives drops, 410 Gone and silence, and read its outcome from
// the pod's termination message.
import { BatchV1Api, CoreV1Api, Watch, type KubeConfig, type V1ContainerStatus, type V1Job, type V1OwnerReference, type V1Pod, type V1Secret } from '@kubernetes/client-node';
import { sleep } from '../sleep.ts';
import { BuilderError, EXIT_USER_ERROR, type ErrorKind } from '../errors.ts';
import { BUILD_CONTAINER_NAME, STEP_CONTAINER_NAMES, type JobFailure, type JobResult } from './contract.ts';
import { kubernetesError, statusOf } from './errors.ts';
import { ANNOTATION_TAG, type JobManifests } from './manifest.ts';

export type JobLog = (event: Record<string, unknown>) => void;

export interface RunJobOptions {
  signal?: AbortSignal | undefined;
  /** Give up waiting after this long; default: the Job's activeDeadlineSeconds plus two minutes. */
  timeoutMs?: number | undefined;
  /** A watch that brings no event for this long is replaced by a fresh list + watch. */
  stallMs?: number | undefined;
  log?: JobLog | undefined;
  /**
   * Whether the registry still holds the image a Complete Job reports. A Complete Job found on create
   * is joined when this says yes (callers that checked the registry just before the push finished get
   * the result instead of deleting the Job under the callers still reading it); without this option,
   * or when it says no, the Job is replaced and the image built again.
   */
  imageExists?: ((result: JobResult) => Promise<boolean>) | undefined;
}

export interface JobOutcome {
  result: JobResult;
  /** Name of the Job that produced it. */
  job: string;
  /** True when this call created the Job, false when it joined one already there. */
  created: boolean;
}

/** The build Job failed; `kind` says whether running it again can help. */
export class BuildJobError extends BuilderError {
  constructor(kind: ErrorKind, message: string, details: Record<string, unknown>) {
    super('E_BUILD_JOB_FAILED', kind, message, { details });
  }
}

const MAX_ENSURE_ATTEMPTS = 5;
/** Container waiting reasons that do not go away by waiting. */
const UNSTARTABLE = new Set(['ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull']);
const LOG_TAIL_LINES = 20;
/** The daemonless Job's init containers that run a runtime phase's command, by name. */
const PHASE_STEPS = new Map<string, string>([
  [STEP_CONTAINER_NAMES.installation, 'installation'],
  [STEP_CONTAINER_NAMES.compilation, 'compilation'],
]);

function condition(job: V1Job, type: string): { reason?: string | undefined; message?: string | undefined } | undefined {
  const found = job.status?.conditions?.find((c) => c.type === type && c.status === 'True');
  return found ? { reason: found.reason, message: found.message } : undefined;
}

function finished(job: V1Job): 'Complete' | 'Failed' | undefined {
  if (condition(job, 'Complete')) return 'Complete';
  if (condition(job, 'Failed')) return 'Failed';
  return undefined;
}


export async function runBuildJob(kubeConfig: KubeConfig, manifests: JobManifests, options: RunJobOptions = {}): Promise<JobOutcome> {
  const batch = kubeConfig.makeApiClient(BatchV1Api);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const log: JobLog = options.log ?? (() => {});
  const name = manifests.job.metadata!.name!;
  const namespace = manifests.job.metadata!.namespace!;
  const where = `Job ${namespace}/${name}`;
  const tag = manifests.job.metadata!.annotations?.[ANNOTATION_TAG];
  const deadlineSeconds = manifests.job.spec?.activeDeadlineSeconds ?? 1800;
  const deadline = Date.now() + (options.timeoutMs ?? deadlineSeconds * 1000 + 120_000);
  const stallMs = options.stallMs ?? 60_000;
  let created = false;

  const ownerOf = (job: V1Job): V1OwnerReference => ({ apiVersion: 'batch/v1', kind: 'Job', name, uid: job.metadata!.uid!, controller: false, blockOwnerDeletion: false });
  // The uid precondition keeps two callers from deleting each other's fresh Job.
  const deleteJob = (job: V1Job) =>
    batch.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background', body: { propagationPolicy: 'Background', preconditions: { uid: job.metadata!.uid! } } });

  /** The input Secret with this call's data, owned by the Job so that it goes when the Job goes. */
  async function upsertInput(job: V1Job): Promise<void> {
    const desired: V1Secret = { ...manifests.input, metadata: { ...manifests.input.metadata, ownerReferences: [ownerOf(job)] } };
    for (let attempt = 0; attempt < MAX_ENSURE_ATTEMPTS; attempt++) {
      try {
        await core.createNamespacedSecret({ namespace, body: desired });
        return;
      } catch (error) {
        if (statusOf(error) !== 409) throw kubernetesError(error, `create Secret ${namespace}/${name}`);
      }
      let existing: V1Secret;
      try {
        existing = await core.readNamespacedSecret({ name, namespace });
      } catch (error) {
        if (statusOf(error) === 404) continue; // collected meanwhile: create it again
        throw kubernetesError(error, `read Secret ${namespace}/${name}`);
      }
      try {
        await core.replaceNamespacedSecret({
          name,
          namespace,
          body: { ...desired, metadata: { ...desired.metadata, resourceVersion: existing.metadata?.resourceVersion } },
        });
        return;
      } catch (error) {
        const status = statusOf(error);
        if (status !== 409 && status !== 404) throw kubernetesError(error, `update Secret ${namespace}/${name}`);
      }
    }
    throw new BuilderError('E_KUBERNETES_CONFLICT', 'infrastructure', `could not write Secret ${namespace}/${name} (the build input): it kept changing under concurrent updates`, {
      details: { secret: `${namespace}/${name}` },
    });
  }

  /**
   * A joined Job's pod cannot start without its input Secret: write it when it is missing, or still
   * owned by an earlier Job (its creator failed or died between the two writes, or the garbage
   * collector is about to take the earlier Job's). Otherwise every caller would wait on the
   * pod's failed mount until the deadline.
   */
  async function ensureInput(job: V1Job): Promise<void> {
    try {
      const existing = await core.readNamespacedSecret({ name, namespace });
      if (existing.metadata?.ownerReferences?.some((owner) => owner.uid === job.metadata?.uid)) return;
    } catch (error) {
      if (statusOf(error) !== 404) throw kubernetesError(error, `read Secret ${namespace}/${name}`);
    }
    log({ event: 'input-restored', job: name, namespace, uid: job.metadata?.uid });
    await upsertInput(job);
  }

  /**
   * Creates the Job, or joins the one running. A Failed one is replaced so a failure never blocks a
   * retry; a Complete one is joined, with its result, when the registry still has its image.
   */
  async function ensureJob(): Promise<{ job: V1Job; result?: JobResult | undefined }> {
    for (let attempt = 0; attempt < MAX_ENSURE_ATTEMPTS; attempt++) {
      let job: V1Job | undefined;
      try {
        job = await batch.createNamespacedJob({ namespace, body: manifests.job });
      } catch (error) {
        if (statusOf(error) !== 409) throw kubernetesError(error, `create ${where}`);
      }
      if (job !== undefined) {
        created = true;
        log({ event: 'job-created', job: name, namespace, uid: job.metadata?.uid });
        try {
          await upsertInput(job);
        } catch (error) {
          // A Job left without its input holds the tag until its deadline: take it back.
          await deleteJob(job).catch(() => undefined);
          throw error;
        }
        return { job };
      }
      let existing: V1Job;
      try {
        existing = await batch.readNamespacedJob({ name, namespace });
      } catch (error) {
        if (statusOf(error) === 404) continue; // deleted meanwhile: create it
        throw kubernetesError(error, `read ${where}`);
      }
      const existingTag = existing.metadata?.annotations?.[ANNOTATION_TAG];
      if (tag !== undefined && existingTag !== undefined && existingTag !== tag) {
        throw new BuilderError('E_JOB_CONFLICT', 'user', `${where} exists but builds tag ${existingTag}, not ${tag}; delete it or rename the function`, {
          details: { job: name, namespace, tag, existingTag },
        });
      }
      const state = finished(existing);
      if (state === undefined) {
        await ensureInput(existing);
        log({ event: 'job-joined', job: name, namespace, uid: existing.metadata?.uid });
        return { job: existing };
      }
      if (state === 'Complete' && options.imageExists !== undefined) {
        const result = await success(existing);
        if (result !== undefined && (await options.imageExists(result))) {
          log({ event: 'job-joined', job: name, namespace, uid: existing.metadata?.uid, state });
          return { job: existing, result };
        }
      }
      // A Failed Job must not block a retry; a Complete one whose image is gone (or unknown) is rebuilt.
      log({ event: 'job-replaced', job: name, namespace, uid: existing.metadata?.uid, state, reason: condition(existing, state)?.reason });
      try {
        await deleteJob(existing);
      } catch (error) {
        const status = statusOf(error);
        if (status !== 404 && status !== 409) throw kubernetesError(error, `delete ${state} ${where}`);
      }
    }
    throw new BuilderError('E_KUBERNETES_CONFLICT', 'infrastructure', `could not create ${where}: it kept being replaced concurrently`, { details: { job: name, namespace } });
  }

  /** Waits until the Job with this name finishes; undefined when it disappeared. */
  async function waitForJob(): Promise<V1Job | undefined> {
    let quickEnds = 0;
    for (;;) {
      if (options.signal?.aborted) throw options.signal.reason;
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
        await sleep(1000, options.signal);
        continue;
      }
      const job = listed.items[0];
      if (job === undefined) return undefined;
      if (finished(job)) return job;
      const watchStarted = Date.now();
      const outcome = await watchOnce(listed.metadata?.resourceVersion ?? '0');
      if (outcome === 'deleted') return undefined;
      if (typeof outcome === 'object') return outcome;
      log({ event: 'job-watch-restart', job: name, why: outcome });
      // A watch refused over and over must not turn into a busy loop against the API server.
      quickEnds = Date.now() - watchStarted < 1000 ? quickEnds + 1 : 0;
      if (quickEnds > 1) await sleep(Math.min(5000, 250 * 2 ** quickEnds), options.signal);
      // A Job whose pod cannot start changes no status until its deadline: look at the pods.
      await checkPodsCanStart(job);
    }
  }

  /** One watch from `resourceVersion`: the finished Job, 'deleted', or why it ended (then re-list). */
  async function watchOnce(resourceVersion: string): Promise<V1Job | 'deleted' | string> {
    const watch = new Watch(kubeConfig);
    return new Promise((resolve) => {
      let settled = false;
      let abort: AbortController | undefined;
      let stallTimer: NodeJS.Timeout | undefined;
      const finish = (value: V1Job | 'deleted' | string) => {
        if (settled) return;
        settled = true;
        if (stallTimer) clearTimeout(stallTimer);
        options.signal?.removeEventListener('abort', onAbort);
        abort?.abort();
        resolve(value);
      };
      const onAbort = () => finish('aborted');
      const armStall = () => {
        if (stallTimer) clearTimeout(stallTimer);
        const remaining = Math.max(0, deadline - Date.now());
        stallTimer = setTimeout(() => finish('stalled'), Math.min(stallMs, remaining));
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
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
  async function checkPodsCanStart(job: V1Job): Promise<void> {
    let pods: V1Pod[];
    try {
      pods = await podsOf(job);
    } catch {
      return; // the next round will see
    }
    for (const pod of pods) {
      for (const status of [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]) {
        const waiting = status.state?.waiting;
        if (!waiting?.reason || !UNSTARTABLE.has(waiting.reason)) continue;
        const image = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === status.name)?.image;
        try {
          await deleteJob(job);
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

  async function podsOf(job: V1Job): Promise<V1Pod[]> {
    try {
      const pods = await core.listNamespacedPod({ namespace, labelSelector: `job-name=${name}` });
      return pods.items
        .filter((pod) => pod.metadata?.ownerReferences?.some((owner) => owner.uid === job.metadata?.uid) ?? true)
        .sort((a, b) => new Date(a.metadata?.creationTimestamp ?? 0).getTime() - new Date(b.metadata?.creationTimestamp ?? 0).getTime());
    } catch (error) {
      throw kubernetesError(error, `list pods of ${where}`);
    }
  }

  /** The container whose end decided the pod's: the init container that failed, else the build container. */
  function decisive(pod: V1Pod): V1ContainerStatus | undefined {
    const failedStep = pod.status?.initContainerStatuses?.find((c) => (c.state?.terminated?.exitCode ?? 0) !== 0);
    return failedStep ?? pod.status?.containerStatuses?.find((c) => c.name === BUILD_CONTAINER_NAME) ?? pod.status?.containerStatuses?.[0];
  }

  function terminated(pod: V1Pod) {
    return decisive(pod)?.state?.terminated;
  }

  async function logTail(pod: V1Pod, container: string): Promise<string | undefined> {
    try {
      const text = await core.readNamespacedPodLog({ name: pod.metadata!.name!, namespace, container, tailLines: LOG_TAIL_LINES });
      return typeof text === 'string' ? text : String(text);
    } catch {
      return undefined; // the log is a diagnostic extra: its absence must not hide the failure
    }
  }

  async function success(job: V1Job): Promise<JobResult | undefined> {
    const pods = await podsOf(job);
    for (const pod of pods.reverse()) {
      if (pod.status?.phase !== 'Succeeded') continue;
      const message = terminated(pod)?.message;
      if (!message) continue;
      try {
        const parsed = JSON.parse(message) as Partial<JobResult>;
        if (typeof parsed.image === 'string' && typeof parsed.reference === 'string' && typeof parsed.digest === 'string') {
          return { image: parsed.image, digest: parsed.digest, reference: parsed.reference, cached: parsed.cached === true };
        }
      } catch {
        // not the builder's message: fall through
      }
    }
    return undefined;
  }

  async function failure(job: V1Job): Promise<BuildJobError> {
    const failed = condition(job, 'Failed') ?? {};
    const pods = (await podsOf(job)).filter((pod) => pod.status?.phase === 'Failed');
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
      let reported: JobFailure['error'] | undefined;
      try {
        reported = (JSON.parse(state?.message ?? '') as JobFailure).error;
      } catch {
        reported = undefined;
      }
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
      details.logTail = await logTail(pod, container);
    }
    const because = failed.reason ? ` (${failed.reason})` : '';
    return new BuildJobError(kind, `${where} failed${because}: ${summary}`, details);
  }

  for (let round = 0; round < MAX_ENSURE_ATTEMPTS; round++) {
    const started = await ensureJob();
    const job = finished(started.job) ? started.job : await waitForJob();
    if (job === undefined) {
      // Deleted while we waited (replaced by another caller, or collected): create or join again.
      log({ event: 'job-gone', job: name });
      continue;
    }
    if (finished(job) === 'Complete') {
      const result = started.result ?? (await success(job));
      if (result !== undefined) {
        log({ event: 'job-complete', job: name, reference: result.reference });
        return { result, job: name, created };
      }
      throw new BuildJobError('infrastructure', `${where} completed but its pod left no readable result in its termination message`, { job: name, namespace });
    }
    throw await failure(job);
  }
  throw new BuilderError('E_KUBERNETES_CONFLICT', 'infrastructure', `${where} kept disappearing while it was awaited`, { details: { job: name, namespace } });
}
