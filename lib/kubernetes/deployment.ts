// What a controller applies to a function's Deployment once its image is known (or while it is
// being built): a strategic-merge patch of apps/v1 Deployment.
import type { V1Container, V1Deployment, V1Volume } from '@kubernetes/client-node';
import { BuilderError } from '../errors.ts';
import type { RegistrySettings } from '../registry/transport.ts';
import { JOB_ENV, JOB_SECRET_DIR } from './contract.ts';
import { DNS1123_LABEL_MAX, isDns1123Label } from './names.ts';

export interface ImageResult {
  /** `namespace/name` of the Function (as scheduleBuild returns it): names the container by default. */
  function?: string | undefined;
  /** `<registry>/<repository>:<tag>`. */
  image: string;
  /** `repo@sha256:...` (on the pull registry, when there is one); absent while the build has not finished. */
  reference?: string | undefined;
  /** `image` as the nodes pull it, when the pull registry's name differs from the push name. */
  pullImage?: string | undefined;
  digest?: string | undefined;
}

export interface DeploymentPatchOptions {
  /** The function's container; Kubeless names it after the function, the default here too. */
  containerName?: string | undefined;
  /** Pull secret of the function image (usually the registry Secret the build pushed with). */
  imagePullSecret?: string | undefined;
  /**
   * Adds an init container running `function-image-builder wait <image>`, so the pod waits for its
   * image instead of sitting in ImagePullBackOff. Needed only while the image may not exist yet.
   */
  wait?: {
    /** The builder image (kubeless-config `builder-image`). */
    builderImage: string;
    /** Secret with the registry credentials for the check, mounted like the build Job mounts it. */
    registrySecret?: string | undefined;
    tlsVerify?: boolean | undefined;
    /**
     * Per-registry CA, plain HTTP or TLS settings for the check (the build input's
     * `registry-settings`), given to the container as its JSON in BUILDER_REGISTRY_SETTINGS: without
     * them the check of a registry with a private CA or over plain HTTP fails and the pod never starts.
     */
    registrySettings?: RegistrySettings | undefined;
    timeoutSeconds?: number | undefined;
  } | undefined;
}

export const WAIT_CONTAINER_NAME = 'wait-for-image';

export function functionDeploymentPatch(result: ImageResult, options: DeploymentPatchOptions = {}): V1Deployment {
  const containerName = options.containerName ?? result.function?.split('/').pop();
  if (!containerName) {
    throw new BuilderError('E_PATCH_INVALID', 'user', 'functionDeploymentPatch: give containerName (the function container, named after the function) or a result with its function');
  }
  // The patch merges by container name, so a made-up valid name would add a second container
  // instead of updating the function's: only the caller knows what the Deployment calls it.
  if (!isDns1123Label(containerName)) {
    const given = options.containerName !== undefined ? 'containerName' : `the function name of ${JSON.stringify(result.function)}`;
    throw new BuilderError(
      'E_PATCH_INVALID',
      'user',
      `functionDeploymentPatch: ${given} gives the container name ${JSON.stringify(containerName)}, which is not a DNS-1123 label (lower-case letters, digits and "-", at most ${DNS1123_LABEL_MAX} characters); give containerName, the name of the function's container in its Deployment`,
      { details: { containerName } },
    );
  }
  // A digest pins exactly what was built and pushed; a tag alone is only safe with the wait container.
  const image = result.reference ?? result.pullImage ?? result.image;
  // The wait container runs in a pod, which reaches the registry where the build pushed, not
  // necessarily at the nodes' pull name; the tag is content-addressed, so checking it is exact.
  const waitFor = result.pullImage === undefined ? image : result.image;
  const initContainers: V1Container[] = [];
  const volumes: V1Volume[] = [];
  if (options.wait !== undefined) {
    const args = ['wait', waitFor];
    if (options.wait.timeoutSeconds !== undefined) args.push('--timeout', String(options.wait.timeoutSeconds));
    if (options.wait.tlsVerify === false) args.push('--tls-verify=false');
    const container: V1Container = {
      name: WAIT_CONTAINER_NAME,
      image: options.wait.builderImage,
      args,
      resources: { requests: { cpu: '10m', memory: '64Mi' }, limits: { cpu: '200m', memory: '128Mi' } },
      terminationMessagePolicy: 'FallbackToLogsOnError',
    };
    if (options.wait.registrySettings !== undefined && Object.keys(options.wait.registrySettings).length > 0) {
      container.env = [{ name: JOB_ENV.registrySettings, value: registrySettingsJson(options.wait.registrySettings) }];
    }
    if (options.wait.registrySecret !== undefined) {
      volumes.push({ name: 'wait-registry-secret', secret: { secretName: options.wait.registrySecret, defaultMode: 0o400 } });
      container.volumeMounts = [{ name: 'wait-registry-secret', mountPath: JOB_SECRET_DIR, readOnly: true }];
    }
    initContainers.push(container);
  }
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    spec: {
      template: {
        spec: {
          containers: [{ name: containerName, image }],
          ...(options.imagePullSecret !== undefined ? { imagePullSecrets: [{ name: options.imagePullSecret }] } : {}),
          ...(initContainers.length > 0 ? { initContainers } : {}),
          ...(volumes.length > 0 ? { volumes } : {}),
        },
      },
    },
  } as V1Deployment;
}

/** The JSON that parseRegistrySettings reads back: a CA given as Buffers becomes PEM text. */
function registrySettingsJson(settings: RegistrySettings): string {
  const pem = (ca: string | Buffer) => (typeof ca === 'string' ? ca : ca.toString('utf8'));
  const entries = Object.entries(settings).map(([host, { ca, ...rest }]) => [
    host,
    { ...rest, ...(ca === undefined ? {} : { ca: Array.isArray(ca) ? ca.map(pem).join('\n') : pem(ca) }) },
  ]);
  return JSON.stringify(Object.fromEntries(entries));
}
