// What the in-cluster commands (`job`, `wait`) read: environment variables and the files the build
// Job mounts (lib/kubernetes/contract.ts names them; docs/kubernetes.md "The Job's contract" documents them).
// Every value has one source, an environment variable winning over the mounted file of the same
// meaning, and every source is reported so the log says where each setting came from.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BuilderError } from '../lib/errors.ts';
import { parseEngine, type BuildEngine } from '../lib/engine/errors.ts';
import { parseRegistrySettings, withTlsVerifyOff } from '../lib/kubernetes/registry-settings.ts';
import { parseRuntimeCatalog, type RuntimeCatalog } from '../lib/runtime/catalog.ts';
import { defaultRuntimeCatalog } from '../lib/runtime/default-catalog.ts';
import { resolveTarget, type BuildTarget } from '../lib/target.ts';
import { parsePrivateAddressAllowance, type PrivateAddressAllowance } from '../lib/function/address.ts';
import { CONFIG_KEYS, JOB_CONFIG_DIR, JOB_ENV, JOB_SECRET_DIR, SECRET_KEYS, TERMINATION_LOG_PATH } from '../lib/kubernetes/contract.ts';
import type { DockerConfig } from '../lib/registry/credentials.ts';
import { loadDockerConfig, type LoadedDockerConfig } from '../lib/registry/load-docker-config.ts';
import type { RegistrySettings } from '../lib/registry/transport.ts';

/** An input of the Job is missing or unreadable: the Job's spec is wrong, so retrying cannot help. */
export class JobInputError extends BuilderError {
  constructor(message: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super('E_JOB_INPUT_INVALID', 'user', message, { details, cause });
  }
}

type Env = Record<string, string | undefined>;

export interface RegistryInputs {
  dockerConfig: DockerConfig | undefined;
  /** The file the credentials came from; never their content. */
  dockerConfigSource: string | undefined;
  /** Target `host[/namespace]`; undefined = derived from the docker config's only entry. */
  registry: string | undefined;
  /** function-registry-tls-verify for the target registry. */
  tlsVerify: boolean;
  /** registry-settings as given; targetOf applies tlsVerify to the target registry. */
  registries: RegistrySettings;
  /** Where each setting came from (env variable or file), for the log. */
  sources: Record<string, string>;
}

export interface JobInputs extends RegistryInputs {
  /** The Function document (YAML or JSON text). */
  function: string;
  /** runtime-images, parsed; the built-in catalog when not given. */
  catalog: RuntimeCatalog;
  /** The tag the scheduler waits for; undefined = whatever the inputs give. */
  tag: string | undefined;
  /** function-url-allow-private-addresses: url sources may come from these private addresses. */
  allowPrivateAddresses: PrivateAddressAllowance;
  terminationLog: string;
  /** BUILDER_ENGINE; undefined = the library's default (docker). */
  engine: BuildEngine | undefined;
  /** BUILDER_INSTALLED_DIR: the daemonless Job's /kubeless, where the install/compile steps ran. */
  installedDir: string | undefined;
}

function readFile(path: string, what: string): string | undefined {
  if (!existsSync(path)) return undefined;
  try {
    if (statSync(path).isDirectory()) throw new Error('is a directory');
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new JobInputError(`cannot read ${what} at ${path}: ${(error as Error).message}`, { path }, error);
  }
}

/** A setting from its environment variable, else from the mounted build input's file; with where it came from. */
function setting(env: Env, variable: string, configDir: string, key: string): { value: string; source: string } | undefined {
  const fromEnv = env[variable];
  if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, source: `env ${variable}` };
  const path = join(configDir, key);
  const fromFile = readFile(path, `setting "${key}"`);
  if (fromFile !== undefined && fromFile.trim() !== '') return { value: fromFile, source: path };
  return undefined;
}

function parseBoolean(value: { value: string; source: string } | undefined, what: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  const text = value.value.trim().toLowerCase();
  if (text === 'true') return true;
  if (text === 'false') return false;
  throw new JobInputError(`${what} (${value.source}) must be "true" or "false", not ${JSON.stringify(value.value.trim())}`, { source: value.source });
}

/** The registry Secret's directory: `.dockerconfigjson` or `.dockercfg`; nothing mounted = anonymous. */
function readSecretDir(dir: string): LoadedDockerConfig {
  return loadDockerConfig(
    [SECRET_KEYS.dockerconfigjson, SECRET_KEYS.dockercfg].map((key) => join(dir, key)).map((path) => ({ source: path, read: () => readFile(path, 'the registry secret') })),
    (path, error) => new JobInputError(`the registry secret ${path} is not usable: ${error.message}`, { path }, error),
  );
}

export function readRegistryInputs(env: Env): RegistryInputs {
  const configDir = env[JOB_ENV.configDir] || JOB_CONFIG_DIR;
  const secretDir = env[JOB_ENV.secretDir] || JOB_SECRET_DIR;
  const sources: Record<string, string> = {};
  const registry = setting(env, JOB_ENV.registry, configDir, CONFIG_KEYS.registry);
  if (registry) sources.registry = registry.source;
  const tls = setting(env, JOB_ENV.tlsVerify, configDir, CONFIG_KEYS.tlsVerify);
  if (tls) sources.tlsVerify = tls.source;
  const settings = setting(env, JOB_ENV.registrySettings, configDir, CONFIG_KEYS.registrySettings);
  if (settings) sources.registrySettings = settings.source;
  const secret = readSecretDir(secretDir);
  if (secret.source) sources.dockerConfig = secret.source;
  return {
    dockerConfig: secret.config,
    dockerConfigSource: secret.source,
    registry: registry?.value.trim(),
    tlsVerify: parseBoolean(tls, CONFIG_KEYS.tlsVerify, true),
    registries: parseRegistrySettings(settings?.value, settings?.source ?? ''),
    sources,
  };
}

/** Where the in-cluster commands leave their outcome; readable even when no other input is. */
export function terminationLogPath(env: Env): string {
  return env[JOB_ENV.terminationLog] || TERMINATION_LOG_PATH;
}

export function readJobInputs(env: Env): JobInputs {
  const configDir = env[JOB_ENV.configDir] || JOB_CONFIG_DIR;
  const registry = readRegistryInputs(env);
  const functionFile = env[JOB_ENV.functionFile] || join(configDir, CONFIG_KEYS.function);
  let fn: { value: string; source: string } | undefined;
  const inline = env[JOB_ENV.function];
  if (inline !== undefined && inline.trim() !== '') fn = { value: inline, source: `env ${JOB_ENV.function}` };
  else {
    const text = readFile(functionFile, 'the Function');
    if (text !== undefined && text.trim() !== '') fn = { value: text, source: functionFile };
  }
  if (fn === undefined) {
    throw new JobInputError(
      `no Function to build: mount it at ${functionFile} (the build input Secret's "${CONFIG_KEYS.function}") or set ${JOB_ENV.function}`,
      { configDir },
    );
  }
  const runtimeImages = setting(env, JOB_ENV.runtimeImages, configDir, CONFIG_KEYS.runtimeImages);
  const tag = setting(env, JOB_ENV.tag, configDir, CONFIG_KEYS.tag);
  const allowance = setting(env, JOB_ENV.allowPrivateAddresses, configDir, CONFIG_KEYS.allowPrivateAddresses);
  const allowPrivateAddresses = parsePrivateAddressAllowance(allowance?.value);
  if (typeof allowPrivateAddresses === 'string') {
    throw new JobInputError(`${CONFIG_KEYS.allowPrivateAddresses} (${allowance?.source}) ${allowPrivateAddresses}`, { source: allowance?.source });
  }
  const sources: Record<string, string> = {
    ...registry.sources,
    function: fn.source,
    ...(runtimeImages ? { runtimeImages: runtimeImages.source } : {}),
    ...(tag ? { tag: tag.source } : {}),
    ...(allowance ? { allowPrivateAddresses: allowance.source } : {}),
  };
  const engineText = env[JOB_ENV.engine]?.trim();
  let engine: BuildEngine | undefined;
  if (engineText) {
    sources.engine = `env ${JOB_ENV.engine}`;
    try {
      engine = parseEngine(engineText, `env ${JOB_ENV.engine}`);
    } catch (error) {
      throw new JobInputError((error as Error).message, { variable: JOB_ENV.engine }, error);
    }
  }
  return {
    ...registry,
    sources,
    function: fn.value,
    catalog: runtimeImages === undefined ? defaultRuntimeCatalog() : parseRuntimeCatalog(runtimeImages.value),
    tag: tag?.value.trim(),
    allowPrivateAddresses,
    terminationLog: terminationLogPath(env),
    engine,
    installedDir: env[JOB_ENV.installedDir] || undefined,
  };
}

/** The target of the Function, and the registry settings with function-registry-tls-verify applied to it. */
export function targetOf(inputs: RegistryInputs, functionName: string): { target: BuildTarget; registries: RegistrySettings } {
  const target = resolveTarget({ registry: inputs.registry, dockerConfig: inputs.dockerConfig, functionName });
  return { target, registries: inputs.tlsVerify ? inputs.registries : withTlsVerifyOff(inputs.registries, target.host) };
}
