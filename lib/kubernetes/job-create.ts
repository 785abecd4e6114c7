// Getting a build Job to wait for: create it with its input Secret, or join the one already there for
// the same tag (restoring its input when missing), or replace a Failed one (or a Complete one whose
// image is gone) so that a finished Job never blocks a retry.
import type { V1Job, V1OwnerReference, V1Secret } from '@kubernetes/client-node';
import { BuilderError } from '../errors.ts';
import { kubernetesError, statusOf } from './errors.ts';
import { condition, deleteJob, finished, type JobContext } from './job-context.ts';
import { jobResult } from './job-outcome.ts';
import { ANNOTATION_TAG } from './manifest.ts';
import type { JobResult } from './termination-message.ts';

/** How many times a write that lost a race with another caller is tried again. */
export const MAX_ENSURE_ATTEMPTS = 5;

export interface EnsuredJob {
  job: V1Job;
  /** The result of a Complete Job that was joined. */
  result?: JobResult | undefined;
  /** True when this call created the Job. */
  created: boolean;
}

function ownerOf(context: JobContext, job: V1Job): V1OwnerReference {
  return { apiVersion: 'batch/v1', kind: 'Job', name: context.name, uid: job.metadata!.uid!, controller: false, blockOwnerDeletion: false };
}

/** The input Secret with this call's data, owned by the Job so that it goes when the Job goes. */
async function upsertInput(context: JobContext, job: V1Job): Promise<void> {
  const { core, manifests, name, namespace } = context;
  const desired: V1Secret = { ...manifests.input, metadata: { ...manifests.input.metadata, ownerReferences: [ownerOf(context, job)] } };
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
async function ensureInput(context: JobContext, job: V1Job): Promise<void> {
  const { core, name, namespace, log } = context;
  try {
    const existing = await core.readNamespacedSecret({ name, namespace });
    if (existing.metadata?.ownerReferences?.some((owner) => owner.uid === job.metadata?.uid)) return;
  } catch (error) {
    if (statusOf(error) !== 404) throw kubernetesError(error, `read Secret ${namespace}/${name}`);
  }
  log({ event: 'input-restored', job: name, namespace, uid: job.metadata?.uid });
  await upsertInput(context, job);
}

/**
 * Creates the Job, or joins the one running. A Failed one is replaced so a failure never blocks a
 * retry; a Complete one is joined, with its result, when `imageExists` says the registry still has
 * its image.
 */
export async function ensureJob(context: JobContext, imageExists: ((result: JobResult) => Promise<boolean>) | undefined): Promise<EnsuredJob> {
  const { batch, manifests, name, namespace, where, tag, log } = context;
  for (let attempt = 0; attempt < MAX_ENSURE_ATTEMPTS; attempt++) {
    let job: V1Job | undefined;
    try {
      job = await batch.createNamespacedJob({ namespace, body: manifests.job });
    } catch (error) {
      if (statusOf(error) !== 409) throw kubernetesError(error, `create ${where}`);
    }
    if (job !== undefined) {
      log({ event: 'job-created', job: name, namespace, uid: job.metadata?.uid });
      try {
        await upsertInput(context, job);
      } catch (error) {
        // A Job left without its input holds the tag until its deadline: take it back.
        await deleteJob(context, job).catch(() => undefined);
        throw error;
      }
      return { job, created: true };
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
      await ensureInput(context, existing);
      log({ event: 'job-joined', job: name, namespace, uid: existing.metadata?.uid });
      return { job: existing, created: false };
    }
    if (state === 'Complete' && imageExists !== undefined) {
      const result = await jobResult(context, existing);
      if (result !== undefined && (await imageExists(result))) {
        log({ event: 'job-joined', job: name, namespace, uid: existing.metadata?.uid, state });
        return { job: existing, result, created: false };
      }
    }
    // A Failed Job must not block a retry; a Complete one whose image is gone (or unknown) is rebuilt.
    log({ event: 'job-replaced', job: name, namespace, uid: existing.metadata?.uid, state, reason: condition(existing, state)?.reason });
    try {
      await deleteJob(context, existing);
    } catch (error) {
      const status = statusOf(error);
      if (status !== 404 && status !== 409) throw kubernetesError(error, `delete ${state} ${where}`);
    }
  }
  throw new BuilderError('E_KUBERNETES_CONFLICT', 'infrastructure', `could not create ${where}: it kept being replaced concurrently`, { details: { job: name, namespace } });
}
