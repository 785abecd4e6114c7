// The build Job's contract: where the Job manifest mounts things and where the in-cluster entrypoint
// (`function-image-builder job`) looks for them. Both sides import these names so they cannot drift;
// docs/kubernetes.md ("The Job's contract") documents every one of them.
import { INSTALL_VOLUME } from '../image/install-volume.ts';

/** Directory holding the build ConfigMap: the Function and the settings, in kubeless-config's keys. */
export const JOB_CONFIG_DIR = '/etc/function-image-builder/build';
/** Directory of the registry Secret (`kubernetes.io/dockerconfigjson` or `kubernetes.io/dockercfg`). */
export const JOB_SECRET_DIR = '/etc/function-image-builder/registry-secret';
export const DOCKER_SOCKET_PATH = '/var/run/docker.sock';
/**
 * Daemonless Job (engine registry): the emptyDir the init containers install into, mounted where
 * Kubeless mounted it and where the install commands expect it (KUBELESS_INSTALL_VOLUME).
 */
export const JOB_INSTALL_DIR = INSTALL_VOLUME;
/** Daemonless Job: an in-memory emptyDir holding each step's env (it may carry the function's secrets). */
export const JOB_STEPS_DIR = '/etc/function-image-builder/steps';
export const TERMINATION_LOG_PATH = '/dev/termination-log';

/** Keys of the build ConfigMap; the settings use the names of the kubeless-config keys they mirror. */
export const CONFIG_KEYS = {
  function: 'function.json',
  runtimeImages: 'runtime-images',
  tlsVerify: 'function-registry-tls-verify',
  /** Target registry, `host[/namespace]`. Not a kubeless-config key: Kubeless derived it from the secret. */
  registry: 'function-registry',
  /** Per-registry transport settings (JSON: host → {tlsVerify, ca, insecure}). */
  registrySettings: 'registry-settings',
  /** The tag the scheduler computed and waits for; the Job builds exactly that tag or fails. */
  tag: 'tag',
  /** url sources may come from private addresses: "true", "false" or addresses/CIDR ranges (lib/function/address.ts). */
  allowPrivateAddresses: 'function-url-allow-private-addresses',
} as const;

/** Secret keys, by Secret type. */
export const SECRET_KEYS = {
  dockerconfigjson: '.dockerconfigjson',
  dockercfg: '.dockercfg',
} as const;

/** Environment variables the entrypoint reads; each overrides the mounted file of the same meaning. */
export const JOB_ENV = {
  /** The Function itself (YAML or JSON), instead of a file. */
  function: 'BUILDER_FUNCTION',
  functionFile: 'BUILDER_FUNCTION_FILE',
  configDir: 'BUILDER_CONFIG_DIR',
  secretDir: 'BUILDER_SECRET_DIR',
  registry: 'BUILDER_REGISTRY',
  tlsVerify: 'BUILDER_REGISTRY_TLS_VERIFY',
  runtimeImages: 'BUILDER_RUNTIME_IMAGES',
  registrySettings: 'BUILDER_REGISTRY_SETTINGS',
  tag: 'BUILDER_TAG',
  allowPrivateAddresses: 'BUILDER_ALLOW_PRIVATE_ADDRESSES',
  terminationLog: 'BUILDER_TERMINATION_LOG',
  /** `docker` (default) or `registry`: the engine of `job`. */
  engine: 'BUILDER_ENGINE',
  /** Daemonless Job: the directory the install/compile steps ran in (`job-sources` writes into it, `job` appends it). */
  installedDir: 'BUILDER_INSTALLED_DIR',
  /** Daemonless Job: where `job-sources` writes each step's env script. */
  stepsDir: 'BUILDER_STEPS_DIR',
} as const;

/** Name of the build container in the Job's pod (the podFailurePolicy rule names it). */
export const BUILD_CONTAINER_NAME = 'build';

/**
 * Init containers of the daemonless Job, in the order they run: the builder writes the deps file,
 * the installation image installs it, the builder adds the code, the compilation image compiles.
 */
export const STEP_CONTAINER_NAMES = {
  depsFile: 'deps-file',
  installation: 'install',
  code: 'code',
  compilation: 'compile',
} as const;
