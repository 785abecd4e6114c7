// The builder's settings in a cluster: the `kubeless-config` ConfigMap and the registry Secret.
//
// The Secret is read from the function's own namespace by default, because the build Job mounts it
// and a pod can only mount Secrets of its own namespace: the Job runs where the Secret is.
import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import type { DockerConfig } from '../registry/credentials.ts';
import { loadDockerConfig } from '../registry/load-docker-config.ts';
import { parseRegistrySettings, targetRegistrySettings } from './registry-settings.ts';
import { parseRuntimeCatalog, type RuntimeCatalog } from '../runtime/catalog.ts';
import { defaultRuntimeCatalog } from '../runtime/default-catalog.ts';
import type { RegistrySettings } from '../registry/transport.ts';
import { BuilderError } from '../errors.ts';
import { parseEngine, type BuildEngine } from '../engine/errors.ts';
import { kubernetesError } from './errors.ts';
import { CONFIG_KEYS, SECRET_KEYS } from './contract.ts';
import { parsePrivateAddressAllowance, type PrivateAddressAllowance } from '../function/address.ts';

export const KUBELESS_CONFIG_NAME = 'kubeless-config';
export const KUBELESS_NAMESPACE = 'kubeless';
export const REGISTRY_SECRET_NAME = 'kubeless-registry-credentials';

/** The build Job's resources and limits; every field has a default (see DEFAULT_JOB_SETTINGS). */
export interface JobSettings {
  /** Retries of an infrastructure failure; a user error (exit code 2) fails the Job at once. */
  backoffLimit: number;
  activeDeadlineSeconds: number;
  ttlSecondsAfterFinished: number;
  /** Host path of the Docker Engine socket mounted into the build pod. */
  dockerSocket: string;
  resources: {
    requests: Record<string, string>;
    limits: Record<string, string>;
  };
  serviceAccountName?: string;
}

export const DEFAULT_JOB_SETTINGS: JobSettings = {
  backoffLimit: 2,
  activeDeadlineSeconds: 1800,
  ttlSecondsAfterFinished: 3600,
  dockerSocket: '/var/run/docker.sock',
  // The Engine does the heavy work outside the pod; the builder holds one build context in memory.
  resources: {
    requests: { cpu: '100m', memory: '128Mi' },
    limits: { cpu: '1', memory: '1Gi' },
  },
};

export interface RegistrySecretRef {
  name: string;
  namespace: string;
  /** The Secret's type, e.g. kubernetes.io/dockerconfigjson. */
  type?: string | undefined;
  /** The credentials it holds, parsed; needed by the scheduler's own registry requests. */
  dockerConfig?: DockerConfig | undefined;
}

export interface BuilderConfig {
  /** `enable-build-step`. */
  enabled: boolean;
  /**
   * Where function images are pushed: `host[/namespace]` (kubeless-config `function-registry`).
   * Unset: like Kubeless, the host and username of the registry Secret's only entry (lib/target.ts).
   */
  registry?: string | undefined;
  /**
   * `function-registry-pull`: `host[/namespace]` the nodes pull function images from, when they
   * cannot use the push address (an in-cluster registry pushed to at its Service name, pulled from
   * `localhost:5000`). References and Deployment patches name it, with the pushed digest.
   */
  pullRegistry?: string | undefined;
  /**
   * `function-registry-tls-verify`: false = the target registry's certificate is not verified.
   * Already applied in `registries`; kept for what passes it on (the Job's ConfigMap, the wait container).
   */
  tlsVerify: boolean;
  /** `runtime-images`, parsed; the built-in catalog when absent. */
  catalog: RuntimeCatalog;
  /**
   * `registry-settings`, parsed, with `function-registry-tls-verify` applied to the target registry
   * (targetRegistrySettings): what every registry request made with this config uses.
   */
  registries: RegistrySettings;
  /**
   * The text of the settings the build Job parses again from its ConfigMap, as kubeless-config holds
   * them (undefined = absent): passed on verbatim, never read on this side.
   */
  jobConfigText: { runtimeImages?: string | undefined; registrySettings?: string | undefined };
  /** `builder-image`: the image of the build Job (Dockerfile.builder). */
  builderImage: string;
  /** `builder-image-secret`: pull secret for the builder image, in the Job's namespace. */
  builderImageSecret?: string | undefined;
  registrySecret: RegistrySecretRef;
  /** `builder-engine`: how images are made, 'docker' (default when unset) or 'registry' (daemonless append). */
  engine?: BuildEngine | undefined;
  /**
   * `builder-fast-path` (default true): with engine `registry`, scheduleBuild appends the image
   * in-process, with no Job, when nothing has to be installed or compiled. false: always a Job.
   */
  fastPath?: boolean | undefined;
  /** `function-url-allow-private-addresses`: url sources may come from these private addresses (default none). */
  allowPrivateAddresses?: PrivateAddressAllowance | undefined;
  job: JobSettings;
}

export interface ReadBuilderConfigOptions {
  /** The function's namespace: the default namespace of the registry Secret (and so of the Job). */
  namespace: string;
  configMapName?: string;
  configMapNamespace?: string;
  secretName?: string;
  secretNamespace?: string;
  /** Overrides `function-registry`. */
  registry?: string;
  /** Overrides `function-registry-pull`. */
  pullRegistry?: string;
  /** Overrides `builder-image`. */
  builderImage?: string;
  job?: Partial<JobSettings>;
}

function parseBoolean(value: string | undefined, key: string, where: string, fallback: boolean): boolean {
  if (value === undefined || value.trim() === '') return fallback;
  const lower = value.trim().toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  throw new BuilderError('E_CONFIG_INVALID', 'user', `${where}: "${key}" must be "true" or "false", not ${JSON.stringify(value)}`, {
    details: { key, where },
  });
}

/** The Secret's docker config, from `.dockerconfigjson` or `.dockercfg` (base64 `data` as the API returns it). */
export function dockerConfigFromSecret(secret: V1Secret, where: string): DockerConfig {
  const data = secret.data ?? {};
  const { config } = loadDockerConfig(
    [SECRET_KEYS.dockerconfigjson, SECRET_KEYS.dockercfg].map((key) => ({ source: key, read: () => (data[key] === undefined ? undefined : Buffer.from(data[key], 'base64').toString('utf8')) })),
    (key, error) => new BuilderError('E_REGISTRY_SECRET_INVALID', 'user', `${where} key "${key}": ${error.message}`, { cause: error, details: { secret: where, key } }),
  );
  if (config === undefined) {
    throw new BuilderError(
      'E_REGISTRY_SECRET_INVALID',
      'user',
      `${where} has neither a "${SECRET_KEYS.dockerconfigjson}" nor a "${SECRET_KEYS.dockercfg}" key (type ${secret.type ?? 'unset'}); create it with "kubectl create secret docker-registry"`,
      { details: { secret: where, keys: Object.keys(data) } },
    );
  }
  return config;
}

export async function readBuilderConfig(kubeConfig: KubeConfig, options: ReadBuilderConfigOptions): Promise<BuilderConfig> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const configMapName = options.configMapName ?? KUBELESS_CONFIG_NAME;
  const configMapNamespace = options.configMapNamespace ?? KUBELESS_NAMESPACE;
  const secretName = options.secretName ?? REGISTRY_SECRET_NAME;
  const secretNamespace = options.secretNamespace ?? options.namespace;
  const configWhere = `ConfigMap ${configMapNamespace}/${configMapName}`;
  const secretWhere = `Secret ${secretNamespace}/${secretName}`;

  let data: Record<string, string>;
  try {
    data = (await core.readNamespacedConfigMap({ name: configMapName, namespace: configMapNamespace })).data ?? {};
  } catch (error) {
    throw kubernetesError(error, `read ${configWhere}`, { notFound: 'install Kubeless (its kubeless-config ConfigMap) or point configMapName/configMapNamespace at it' });
  }

  let secret: V1Secret;
  try {
    secret = await core.readNamespacedSecret({ name: secretName, namespace: secretNamespace });
  } catch (error) {
    throw kubernetesError(error, `read ${secretWhere}`, {
      notFound: `create it with "kubectl create secret docker-registry ${secretName} -n ${secretNamespace} --docker-server=... --docker-username=... --docker-password=..."`,
    });
  }
  const dockerConfig = dockerConfigFromSecret(secret, secretWhere);

  return parseBuilderConfig(data, {
    where: configWhere,
    registrySecret: { name: secretName, namespace: secretNamespace, type: secret.type, dockerConfig },
    overrides: { registry: options.registry, pullRegistry: options.pullRegistry, builderImage: options.builderImage, job: options.job },
  });
}

/** Values given over kubeless-config's keys, already checked by whoever took them (options, flags). */
export interface BuilderConfigOverrides {
  registry?: string | undefined;
  pullRegistry?: string | undefined;
  builderImage?: string | undefined;
  builderImageSecret?: string | undefined;
  tlsVerify?: boolean | undefined;
  engine?: BuildEngine | undefined;
  allowPrivateAddresses?: PrivateAddressAllowance | undefined;
  /** runtime-images text from elsewhere (a file), with what names it in errors. */
  runtimeImages?: { text: string; where: string } | undefined;
  job?: Partial<JobSettings> | undefined;
}

/**
 * kubeless-config's data, parsed: the one place its keys are read, for readBuilderConfig (the
 * ConfigMap in the cluster) and the job-manifest command (a file). `where` names the source in
 * errors; `registrySecret.dockerConfig` has the credentials that may name the target registry.
 */
export function parseBuilderConfig(
  data: Record<string, string | undefined>,
  context: { where: string; registrySecret: RegistrySecretRef; overrides?: BuilderConfigOverrides },
): BuilderConfig {
  const { where } = context;
  const { dockerConfig } = context.registrySecret;
  const overrides = context.overrides ?? {};
  const registry = overrides.registry ?? nonEmpty(data['function-registry'])?.trim();
  const builderImage = overrides.builderImage ?? nonEmpty(data['builder-image']);
  if (builderImage === undefined) {
    throw new BuilderError('E_CONFIG_INVALID', 'user', `${where} has no "builder-image": set it to the image built from Dockerfile.builder`, {
      details: { key: 'builder-image', where },
    });
  }
  const runtimeImages = overrides.runtimeImages ?? optionalText(data['runtime-images'], `${where} key "runtime-images"`);
  // Parsed here, once: a broken catalog is reported by the controller, not by every build Job.
  let catalog: RuntimeCatalog;
  try {
    catalog = runtimeImages === undefined ? defaultRuntimeCatalog() : parseRuntimeCatalog(runtimeImages.text);
  } catch (error) {
    if (!(error instanceof BuilderError)) throw error;
    throw new BuilderError(error.code, error.kind, `${runtimeImages!.where}: ${error.message}`, { cause: error, details: error.details });
  }
  const registrySettings = nonEmpty(data['registry-settings']);
  const tlsVerify = overrides.tlsVerify ?? parseBoolean(data['function-registry-tls-verify'], 'function-registry-tls-verify', where, true);
  const registries = targetRegistrySettings(parseRegistrySettings(registrySettings, `${where} key "registry-settings"`), tlsVerify, { registry, dockerConfig });
  const allowPrivateAddresses = overrides.allowPrivateAddresses ?? parsePrivateAddressAllowance(data[CONFIG_KEYS.allowPrivateAddresses]);
  if (typeof allowPrivateAddresses === 'string') {
    throw new BuilderError('E_CONFIG_INVALID', 'user', `${where}: "${CONFIG_KEYS.allowPrivateAddresses}" ${allowPrivateAddresses}`, {
      details: { key: CONFIG_KEYS.allowPrivateAddresses, where },
    });
  }
  return {
    enabled: parseBoolean(data['enable-build-step'], 'enable-build-step', where, false),
    registry,
    pullRegistry: overrides.pullRegistry ?? nonEmpty(data['function-registry-pull'])?.trim(),
    tlsVerify,
    catalog,
    registries,
    jobConfigText: { runtimeImages: runtimeImages?.text, registrySettings },
    builderImage,
    builderImageSecret: overrides.builderImageSecret ?? nonEmpty(data['builder-image-secret']),
    registrySecret: context.registrySecret,
    engine: overrides.engine ?? builderEngine(data['builder-engine'], where),
    fastPath: parseBoolean(data['builder-fast-path'], 'builder-fast-path', where, true),
    allowPrivateAddresses,
    job: { ...DEFAULT_JOB_SETTINGS, ...overrides.job },
  };
}

function optionalText(value: string | undefined, where: string): { text: string; where: string } | undefined {
  const text = nonEmpty(value);
  return text === undefined ? undefined : { text, where };
}

function builderEngine(value: string | undefined, where: string): BuildEngine {
  const given = nonEmpty(value)?.trim();
  return given === undefined ? 'docker' : parseEngine(given, `${where} key "builder-engine"`);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
