// Where a function's image goes: <host>/<namespace>/<function>:<tag>. The namespace is the one given
// with the registry, else (the Kubeless default) the username of the docker config entry for that
// host; without a registry, the docker config's only entry names both host and namespace.
import { BuilderError } from './errors.ts';
import { ImageReferenceError, NAME_MAX_LENGTH, normaliseRegistryHost, parseReference } from './image/reference.ts';
import { resolveCredentials, type DockerConfig } from './registry/credentials.ts';

export interface BuildTarget {
  /** Registry host[:port], normalised. */
  host: string;
  /** Repository path on the registry: `ns/fn`. */
  path: string;
  /** `host/ns/fn`, what an image reference starts with. */
  repository: string;
  /** How the target was chosen, for the log. */
  reason: string;
}

export class TargetError extends BuilderError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('E_TARGET_INVALID', 'user', message, { details });
  }
}

/** Host of images built with `push: false` and no registry: a name no registry will ever answer for. */
export const LOCAL_REGISTRY_HOST = 'kubeless.local';

export function resolveTarget(options: { registry?: string | undefined; dockerConfig?: DockerConfig | undefined; functionName: string; local?: boolean }): BuildTarget {
  const { host, namespace, reason } = targetRegistry(options);
  const path = [namespace, options.functionName].filter((part) => part !== undefined && part !== '').join('/');
  const repository = checkImageName(`${host}/${path}`, options.functionName, {
    subject: 'the image name',
    pathName: 'the registry path',
    invalid: (name, rule) => `the image name ${name} is not valid (${rule}); give the registry as "host/namespace" with a lower-case namespace`,
  });
  return { host, path, repository, reason };
}

/**
 * The registry every function's image goes to, with the namespace in it: the same for all functions
 * of one configuration, so settings that name the target registry are applied once, by host.
 */
export function targetRegistry(options: { registry?: string | undefined; dockerConfig?: DockerConfig | undefined; local?: boolean | undefined }): { host: string; namespace: string | undefined; reason: string } {
  let host: string;
  let namespace: string | undefined;
  let reason: string;
  if (options.registry !== undefined && options.registry.trim() !== '') {
    ({ host, namespace } = splitRegistry(options.registry.trim()));
    reason = namespace === undefined ? `registry ${host}` : `registry ${host}, namespace ${namespace}`;
    if (namespace === undefined) {
      const credential = resolveCredentials(options.dockerConfig, host);
      if (credential?.username) {
        namespace = credential.username;
        reason += `, namespace from the username of docker config key "${credential.key}"`;
      }
    }
  } else {
    const entries = options.dockerConfig?.entries ?? [];
    const only = entries[0];
    if (entries.length === 1 && only) {
      host = only.host;
      namespace = only.credential.username;
      reason = `the only docker config entry "${only.key}"`;
    } else if (options.local) {
      host = LOCAL_REGISTRY_HOST;
      reason = 'local build without a registry';
    } else if (entries.length === 0) {
      throw new TargetError('no target registry: give one (registry "host[/namespace]") or a docker config with the credentials of the registry to push to');
    } else {
      throw new TargetError(`no target registry, and the docker config has ${entries.length} entries (${entries.map((e) => `"${e.key}"`).join(', ')}): say which registry to push to (registry "host[/namespace]")`, {
        keys: entries.map((e) => e.key),
      });
    }
  }
  return { host, namespace, reason };
}

/**
 * The repository nodes pull a target's images from, when it differs from where they are pushed
 * (`function-registry-pull`): an in-cluster registry is pushed to at its Service name while kubelets
 * pull from `localhost:5000`. `HOST` keeps the push repository's path on another host; `HOST/NS`
 * also replaces the namespace (`HOST/NS/<function>`). Same digest either way: it is one registry.
 */
export function pullRepository(target: BuildTarget, pullRegistry: string | undefined): string {
  if (pullRegistry === undefined || pullRegistry.trim() === '') return target.repository;
  const { host, namespace } = splitRegistry(pullRegistry.trim());
  const functionName = target.path.slice(target.path.lastIndexOf('/') + 1);
  return checkImageName(namespace === undefined ? `${host}/${target.path}` : `${host}/${namespace}/${functionName}`, functionName, {
    subject: 'the pull name',
    pathName: namespace === undefined
      ? `the pull path (pull host "${host}" with the push path; give the pull registry as "host/namespace" to choose another)`
      : `the pull path (from pull registry "${pullRegistry}")`,
    invalid: (name, rule) => `the pull name ${name} (from pull registry "${pullRegistry}") is not a valid image name (${rule}); give it as "host[/namespace]" with a lower-case namespace`,
    details: { pullRegistry },
  });
}

/** A build result's `pullImage`: only when nodes pull the image under another name than it is pushed under. */
export function pullNames(target: BuildTarget, pullRepo: string, tag: string): { pullImage?: string } {
  return pullRepo === target.repository ? {} : { pullImage: `${pullRepo}:${tag}` };
}

/**
 * `repository` (`<registry path>/<functionName>`) when it is a valid image name, else E_TARGET_INVALID.
 * A name too long says which part to shorten and by how much: the function name comes from the
 * Function, the registry path from the configuration, and either may be the one that is too long.
 */
function checkImageName(
  repository: string,
  functionName: string,
  context: { subject: string; pathName: string; invalid: (repository: string, rule: string) => string; details?: Record<string, unknown> },
): string {
  try {
    parseReference(repository);
    return repository;
  } catch (error) {
    if (!(error instanceof ImageReferenceError)) throw error;
    const details = { ...context.details, repository };
    // Only when length is the rule broken: a long name that also breaks another rule is told that one first.
    if (error.details.tooLong !== true) throw new TargetError(context.invalid(repository, String(error.details.rule)), details);
    const registryPath = repository.slice(0, repository.length - functionName.length - 1);
    const excess = repository.length - NAME_MAX_LENGTH;
    // What the function name may have: the limit less the registry path and the "/" after it.
    const room = NAME_MAX_LENGTH - registryPath.length - 1;
    const shown = (text: string) => (text.length > 60 ? `"${text.slice(0, 60)}..."` : `"${text}"`);
    const fix = room < 1
      ? `shorten ${context.pathName} by at least ${excess} characters: by itself it leaves no room for the function name`
      : `shorten the function name (metadata.name) to at most ${room} characters, or ${context.pathName} by ${excess}`;
    throw new TargetError(
      `${context.subject} ${shown(repository)} is longer than ${NAME_MAX_LENGTH} characters, the most a registry accepts ` +
        `(${repository.length}: ${context.pathName} ${shown(registryPath)} has ${registryPath.length}, the function name ${functionName.length}); ${fix}`,
      { ...details, limit: NAME_MAX_LENGTH, length: repository.length, registryPath, functionName, functionNameMax: Math.max(room, 0) },
    );
  }
}

/** `host[/namespace]`, also accepting the Kubeless server forms `https://host/v1/` and `http://host:5000/v2`. */
function splitRegistry(input: string): { host: string; namespace: string | undefined } {
  let rest = input;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(rest);
  if (scheme) {
    rest = rest.slice(scheme[0].length).replace(/\/+$/, '');
    rest = rest.replace(/\/v[12]$/, '');
  }
  rest = rest.replace(/\/+$/, '');
  const slash = rest.indexOf('/');
  const host = normaliseRegistryHost(slash === -1 ? rest : rest.slice(0, slash));
  const namespace = slash === -1 ? undefined : rest.slice(slash + 1);
  if (host === '' || /\s/.test(host)) throw new TargetError(`registry "${input}" names no host; write host[:port][/namespace]`, { registry: input });
  return { host, namespace: namespace === '' ? undefined : namespace };
}
