// The build Job and the Secret holding its input (the Function and the settings), as plain objects
// ready for the API or `kubectl apply`. A Secret, not a ConfigMap: the Function carries its env,
// whose plain values may be passwords, and ConfigMaps are readable by whoever may read the
// namespace's configuration (and shown by `kubectl describe`).
import type { V1Job, V1OwnerReference, V1Secret, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { BuilderError, EXIT_USER_ERROR } from '../errors.ts';
import { functionId } from '../function/spec.ts';
import { formatPrivateAddressAllowance } from '../function/address.ts';
import type { BuilderConfig } from './config.ts';
import {
  BUILD_CONTAINER_NAME,
  CONFIG_KEYS,
  DOCKER_SOCKET_PATH,
  JOB_CONFIG_DIR,
  JOB_SECRET_DIR,
  TERMINATION_LOG_PATH,
} from './contract.ts';
import { daemonlessJobManifests } from './daemonless-job.ts';
import type { JobSteps } from './job-steps.ts';
import { buildJobName, labelValue } from './names.ts';

const LABEL_CREATED_BY = 'created-by';
const LABEL_FUNCTION = 'function';
const ANNOTATION_FUNCTION = 'function-image-builder.io/function';
export const ANNOTATION_TAG = 'function-image-builder.io/tag';
const ANNOTATION_IMAGE = 'function-image-builder.io/image';
/** etcd refuses objects past about 1.5 MB; a Secret's data is limited to 1 MiB. */
const BUILD_INPUT_MAX_BYTES = 1024 * 1024;

export interface JobFunction {
  name: string;
  namespace: string;
  /** metadata.uid of the Function; the Job is owned by it when known. */
  uid?: string | undefined;
  /** The Function as the cluster stores it (object) or its YAML/JSON text; the Job parses it again. */
  source: string | object;
  /** The image tag (64 hex) the build will produce. */
  tag: string;
  /** `<registry>/<repository>:<tag>`, recorded on the Job for people reading it. */
  image?: string | undefined;
  /** Engine `registry` only, and required there: the install/compile steps of the plan (jobSteps(plan)). */
  steps?: JobSteps | undefined;
}

export interface JobManifests {
  /** The Secret the Job mounts at JOB_CONFIG_DIR: the Function and the build settings. */
  input: V1Secret;
  job: V1Job;
}

/** The namespace the Job runs in: the registry Secret's, because the pod mounts it. */
function jobNamespace(fn: JobFunction, config: BuilderConfig): string {
  return config.registrySecret.namespace || fn.namespace;
}

function functionLabels(name: string): Record<string, string> {
  return { [LABEL_CREATED_BY]: 'kubeless', [LABEL_FUNCTION]: labelValue(name) };
}

export function buildInputData(fn: JobFunction, config: BuilderConfig): Record<string, string> {
  const data: Record<string, string> = {
    [CONFIG_KEYS.function]: typeof fn.source === 'string' ? fn.source : `${JSON.stringify(fn.source, null, 2)}\n`,
    [CONFIG_KEYS.tlsVerify]: String(config.tlsVerify),
    [CONFIG_KEYS.tag]: fn.tag,
  };
  if (config.registry !== undefined) data[CONFIG_KEYS.registry] = config.registry;
  if (config.jobConfigText.runtimeImages !== undefined) data[CONFIG_KEYS.runtimeImages] = config.jobConfigText.runtimeImages;
  if (config.jobConfigText.registrySettings !== undefined) data[CONFIG_KEYS.registrySettings] = config.jobConfigText.registrySettings;
  if (config.allowPrivateAddresses) data[CONFIG_KEYS.allowPrivateAddresses] = formatPrivateAddressAllowance(config.allowPrivateAddresses);
  const bytes = Object.entries(data).reduce((sum, [key, value]) => sum + Buffer.byteLength(key) + Buffer.byteLength(value), 0);
  if (bytes > BUILD_INPUT_MAX_BYTES) {
    throw new BuilderError(
      'E_FUNCTION_TOO_LARGE',
      'user',
      `function ${functionId(fn)}: the Function and the build settings take ${bytes} bytes, more than a Secret holds (${BUILD_INPUT_MAX_BYTES}); ship the source as a url with a checksum instead of inline`,
      { details: { function: fn.name, namespace: fn.namespace, bytes } },
    );
  }
  return data;
}

export function buildJobManifest(fn: JobFunction, config: BuilderConfig): JobManifests {
  const name = buildJobName(fn.name, fn.tag);
  const namespace = jobNamespace(fn, config);
  const labels = functionLabels(fn.name);
  const id = functionId(fn);
  const annotations: Record<string, string> = { [ANNOTATION_FUNCTION]: id, [ANNOTATION_TAG]: fn.tag };
  if (fn.image !== undefined) annotations[ANNOTATION_IMAGE] = fn.image;

  // An owner must live in the same namespace as what it owns.
  const ownerReferences: V1OwnerReference[] =
    fn.uid !== undefined && fn.uid !== '' && namespace === fn.namespace
      ? [{ apiVersion: 'kubeless.io/v1beta1', kind: 'Function', name: fn.name, uid: fn.uid, controller: true, blockOwnerDeletion: false }]
      : [];

  const input: V1Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: { name, namespace, labels: { ...labels }, annotations: { ...annotations } },
    stringData: buildInputData(fn, config),
  };

  const volumes: V1Volume[] = [
    { name: 'build-config', secret: { secretName: name, defaultMode: 0o400 } },
    { name: 'registry-secret', secret: { secretName: config.registrySecret.name, defaultMode: 0o400 } },
  ];
  const volumeMounts: V1VolumeMount[] = [
    { name: 'build-config', mountPath: JOB_CONFIG_DIR, readOnly: true },
    { name: 'registry-secret', mountPath: JOB_SECRET_DIR, readOnly: true },
  ];
  // Only the Docker engine talks to the node's daemon; the registry engine's pod has no socket anywhere.
  if (config.engine !== 'registry') {
    volumes.push({ name: 'docker-socket', hostPath: { path: config.job.dockerSocket, type: 'Socket' } });
    volumeMounts.push({ name: 'docker-socket', mountPath: DOCKER_SOCKET_PATH });
  }

  const job: V1Job = {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace, labels, annotations, ...(ownerReferences.length > 0 ? { ownerReferences } : {}) },
    spec: {
      backoffLimit: config.job.backoffLimit,
      activeDeadlineSeconds: config.job.activeDeadlineSeconds,
      ttlSecondsAfterFinished: config.job.ttlSecondsAfterFinished,
      // Retrying a bad spec or denied credentials cannot help; a disrupted pod (node drain,
      // preemption) is not the build's fault and must not use up the retries.
      podFailurePolicy: {
        rules: [
          { action: 'FailJob', onExitCodes: { containerName: BUILD_CONTAINER_NAME, operator: 'In', values: [EXIT_USER_ERROR] } },
          { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
        ],
      },
      template: {
        metadata: { labels: { ...labels }, annotations: { [ANNOTATION_FUNCTION]: id } },
        spec: {
          // podFailurePolicy requires Never: the Job, not the kubelet, decides about retries.
          restartPolicy: 'Never',
          ...(config.job.serviceAccountName !== undefined ? { serviceAccountName: config.job.serviceAccountName } : {}),
          ...(config.builderImageSecret !== undefined ? { imagePullSecrets: [{ name: config.builderImageSecret }] } : {}),
          containers: [
            {
              name: BUILD_CONTAINER_NAME,
              image: config.builderImage,
              args: ['job'],
              resources: { requests: { ...config.job.resources.requests }, limits: { ...config.job.resources.limits } },
              terminationMessagePath: TERMINATION_LOG_PATH,
              terminationMessagePolicy: 'FallbackToLogsOnError',
              volumeMounts,
            },
          ],
          volumes,
        },
      },
    },
  };
  return config.engine === 'registry' ? daemonlessJobManifests({ input, job }, stepsFor(fn), config) : { input, job };
}

function stepsFor(fn: JobFunction): JobSteps {
  if (fn.steps === undefined) {
    throw new BuilderError('E_JOB_STEPS_MISSING', 'user', `function ${functionId(fn)}: the registry engine's Job needs the install/compile steps of the function (steps: jobSteps(plan), as scheduleBuild passes them)`, {
      details: { function: fn.name, namespace: fn.namespace },
    });
  }
  return fn.steps;
}
