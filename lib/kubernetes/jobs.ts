// Running one build Job to its end: create it (or join the one already running for the same tag),
// wait for it through a watch that survives drops, 410 Gone and silence, and read its outcome from
// the pod's termination message. Each step lives in its own module (job-create, job-watch,
// job-outcome); they share one JobContext (job-context).
import type { KubeConfig } from '@kubernetes/client-node';
import { BuilderError } from '../errors.ts';
import { ensureJob, MAX_ENSURE_ATTEMPTS } from './job-create.ts';
import { finished, jobContext, type JobLog } from './job-context.ts';
import { BuildJobError, jobFailure, jobResult } from './job-outcome.ts';
import { waitForJob } from './job-watch.ts';
import type { JobManifests } from './manifest.ts';
import type { JobResult } from './termination-message.ts';

export { BuildJobError } from './job-outcome.ts';

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

export async function runBuildJob(kubeConfig: KubeConfig, manifests: JobManifests, options: RunJobOptions = {}): Promise<JobOutcome> {
  const context = jobContext(kubeConfig, manifests, options);
  const { name, namespace, where, log } = context;
  let created = false;
  for (let round = 0; round < MAX_ENSURE_ATTEMPTS; round++) {
    const started = await ensureJob(context, options.imageExists);
    created ||= started.created;
    const job = finished(started.job) ? started.job : await waitForJob(context);
    if (job === undefined) {
      // Deleted while we waited (replaced by another caller, or collected): create or join again.
      log({ event: 'job-gone', job: name });
      continue;
    }
    if (finished(job) === 'Complete') {
      const result = started.result ?? (await jobResult(context, job));
      if (result !== undefined) {
        log({ event: 'job-complete', job: name, reference: result.reference });
        return { result, job: name, created };
      }
      throw new BuildJobError('infrastructure', `${where} completed but its pod left no readable result in its termination message`, { job: name, namespace });
    }
    throw await jobFailure(context, job);
  }
  throw new BuilderError('E_KUBERNETES_CONFLICT', 'infrastructure', `${where} kept disappearing while it was awaited`, { details: { job: name, namespace } });
}
