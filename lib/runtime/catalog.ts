// The runtime catalog in Kubeless's `runtime-images` format: a JSON list of runtimes, each with
// versions, and per version the images of the phases `installation` (installs the deps),
// `compilation` (optional) and `runtime` (the image the function runs on).
import { parseReference } from '../image/reference.ts';
import { BuilderError } from '../errors.ts';
import { CatalogInvalidError, RuntimeUnknownError } from './errors.ts';

export type PhaseName = 'installation' | 'compilation' | 'runtime';
const PHASES: readonly PhaseName[] = ['installation', 'compilation', 'runtime'];

export interface RuntimePhase {
  /** As written in the catalog; a tag is resolved to a digest before it is used. */
  image: string;
  /** Run with `sh -c` (installation, compilation). */
  command?: string;
  /** Unexpanded: values may hold $(VAR) references. */
  env: Record<string, string>;
}

export interface RuntimeVersion {
  name: string;
  version: string;
  phases: { installation?: RuntimePhase; compilation?: RuntimePhase; runtime: RuntimePhase };
  /** Names of the pull secrets the catalog lists for these images. */
  imagePullSecrets: string[];
}

export interface RuntimeDefinition {
  id: string;
  /** The dependency file's name in /kubeless, e.g. package.json; "" when the runtime has none. */
  depName: string;
  /** Appended to the handler's module for single-file sources, e.g. ".js". */
  fileNameSuffix: string;
  versions: RuntimeVersion[];
}

export interface RuntimeCatalog {
  runtimes: RuntimeDefinition[];
}

/** One runtime version, as a Function's spec.runtime selects it. */
export interface ResolvedRuntime {
  /** spec.runtime, e.g. "nodejs14". */
  runtime: string;
  id: string;
  version: string;
  /** The version's name in the catalog, e.g. "node14". */
  name: string;
  depName: string;
  fileNameSuffix: string;
  phases: { installation?: RuntimePhase; compilation?: RuntimePhase; runtime: RuntimePhase };
  imagePullSecrets: string[];
}

const RUNTIME_ID = /^[a-zA-Z_-]+$/;
const VERSION = /^[0-9.]+$/;
const FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._+-]*$/;
const SUFFIX = /^(\.[A-Za-z0-9_+-]+)*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Reads a catalog from the JSON text of `runtime-images`, a kubeless-config ConfigMap (or its
 * `data` object, whose `runtime-images` key holds that JSON text), or the already parsed list.
 */
export function parseRuntimeCatalog(input: string | Buffer | object): RuntimeCatalog {
  let value: unknown = input;
  let where = 'runtime-images';
  if (Buffer.isBuffer(value)) value = value.toString('utf8');
  if (isObject(value) && value.kind === 'ConfigMap') {
    if (!isObject(value.data)) throw new CatalogInvalidError('data', 'the ConfigMap has no data');
    value = value.data;
  }
  if (isObject(value) && 'runtime-images' in value) {
    value = value['runtime-images'];
    where = 'data["runtime-images"]';
  }
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch (error) {
      throw new CatalogInvalidError(where, `is not valid JSON: ${(error as Error).message}`, { cause: error });
    }
  }
  if (!Array.isArray(value)) {
    throw new CatalogInvalidError(where, 'must be a JSON list of runtimes [{"ID", "depName", "fileNameSuffix", "versions"}]');
  }
  const runtimes = value.map((entry, index) => parseDefinition(entry, `${where}[${index}]`));
  const seen = new Set<string>();
  runtimes.forEach((definition, index) => {
    for (const version of definition.versions) {
      const key = definition.id + version.version;
      if (seen.has(key)) throw new CatalogInvalidError(`${where}[${index}]`, `runtime ${key} is defined twice`);
      seen.add(key);
    }
  });
  return { runtimes };
}

function parseDefinition(entry: unknown, at: string): RuntimeDefinition {
  if (!isObject(entry)) throw new CatalogInvalidError(at, 'must be an object');
  const id = entry.ID ?? entry.id;
  if (typeof id !== 'string' || !RUNTIME_ID.test(id)) {
    throw new CatalogInvalidError(`${at}.ID`, `must be letters, "_" and "-" (e.g. nodejs), found ${JSON.stringify(id ?? null)}`);
  }
  const depName = entry.depName ?? '';
  if (typeof depName !== 'string' || (depName !== '' && (!FILE_NAME.test(depName) || depName.length > 255))) {
    throw new CatalogInvalidError(`${at}.depName`, `must be a plain file name such as package.json, found ${JSON.stringify(depName)}`);
  }
  const fileNameSuffix = entry.fileNameSuffix ?? '';
  if (typeof fileNameSuffix !== 'string' || !SUFFIX.test(fileNameSuffix) || fileNameSuffix.length > 32) {
    throw new CatalogInvalidError(`${at}.fileNameSuffix`, `must be a file extension such as .js, found ${JSON.stringify(fileNameSuffix)}`);
  }
  if (!Array.isArray(entry.versions) || entry.versions.length === 0) {
    throw new CatalogInvalidError(`${at}.versions`, 'must be a non-empty list');
  }
  const versions = entry.versions.map((version, index) => parseVersion(version, `${at}.versions[${index}]`));
  return { id, depName, fileNameSuffix, versions };
}

function parseVersion(entry: unknown, at: string): RuntimeVersion {
  if (!isObject(entry)) throw new CatalogInvalidError(at, 'must be an object');
  const rawVersion = typeof entry.version === 'number' ? String(entry.version) : entry.version;
  if (typeof rawVersion !== 'string' || !VERSION.test(rawVersion)) {
    throw new CatalogInvalidError(`${at}.version`, `must be digits and dots (e.g. 14 or 3.8), found ${JSON.stringify(entry.version ?? null)}`);
  }
  const name = entry.name ?? rawVersion;
  if (typeof name !== 'string') throw new CatalogInvalidError(`${at}.name`, 'must be a string');

  const phases: Partial<Record<PhaseName, RuntimePhase>> = {};
  if (entry.images !== undefined) {
    if (!Array.isArray(entry.images)) throw new CatalogInvalidError(`${at}.images`, 'must be a list of {phase, image, command, env}');
    entry.images.forEach((image, index) => {
      const imageAt = `${at}.images[${index}]`;
      if (!isObject(image)) throw new CatalogInvalidError(imageAt, 'must be an object');
      const phase = image.phase;
      if (typeof phase !== 'string' || !(PHASES as readonly string[]).includes(phase)) {
        throw new CatalogInvalidError(`${imageAt}.phase`, `must be one of ${PHASES.join(', ')}, found ${JSON.stringify(phase ?? null)}`);
      }
      if (phases[phase as PhaseName] !== undefined) throw new CatalogInvalidError(`${imageAt}.phase`, `phase ${phase} appears twice`);
      phases[phase as PhaseName] = parsePhase(image, imageAt);
    });
  }
  // The older catalog form named the images directly.
  if (entry.runtimeImage !== undefined && phases.runtime === undefined) {
    phases.runtime = parsePhase({ image: entry.runtimeImage }, `${at}.runtimeImage`);
  }
  if (entry.initImage !== undefined && phases.installation === undefined) {
    phases.installation = parsePhase({ image: entry.initImage }, `${at}.initImage`);
  }
  const runtime = phases.runtime;
  if (runtime === undefined) throw new CatalogInvalidError(`${at}.images`, 'must have a runtime phase (the image the function runs on)');

  const imagePullSecrets: string[] = [];
  if (entry.imagePullSecrets !== undefined && entry.imagePullSecrets !== null) {
    if (!Array.isArray(entry.imagePullSecrets)) throw new CatalogInvalidError(`${at}.imagePullSecrets`, 'must be a list');
    entry.imagePullSecrets.forEach((secret, index) => {
      const secretName = typeof secret === 'string' ? secret : isObject(secret) ? (secret.imageSecret ?? secret.ImageSecret ?? secret.name) : undefined;
      if (typeof secretName !== 'string' || secretName === '') {
        throw new CatalogInvalidError(`${at}.imagePullSecrets[${index}]`, 'must be {"imageSecret": "<secret name>"}');
      }
      imagePullSecrets.push(secretName);
    });
  }
  const result: RuntimeVersion = { name, version: rawVersion, phases: { runtime }, imagePullSecrets };
  if (phases.installation !== undefined) result.phases.installation = phases.installation;
  if (phases.compilation !== undefined) result.phases.compilation = phases.compilation;
  return result;
}

function parsePhase(entry: Json, at: string): RuntimePhase {
  const image = entry.image;
  if (typeof image !== 'string' || image === '') throw new CatalogInvalidError(`${at}.image`, 'must be an image reference');
  try {
    parseReference(image);
  } catch (error) {
    throw new CatalogInvalidError(`${at}.image`, error instanceof BuilderError ? error.message : 'must be an image reference', { cause: error });
  }
  const phase: RuntimePhase = { image, env: {} };
  if (entry.command !== undefined && entry.command !== null && entry.command !== '') {
    if (typeof entry.command !== 'string') throw new CatalogInvalidError(`${at}.command`, 'must be a shell command string');
    if (entry.command.includes('\0')) throw new CatalogInvalidError(`${at}.command`, 'must not contain NUL');
    phase.command = entry.command;
  }
  if (entry.env !== undefined && entry.env !== null) {
    if (!isObject(entry.env)) throw new CatalogInvalidError(`${at}.env`, 'must be a map of names to string values');
    for (const [name, value] of Object.entries(entry.env)) {
      if (!ENV_NAME.test(name)) throw new CatalogInvalidError(`${at}.env`, `${JSON.stringify(name)} is not an environment variable name`);
      if (typeof value !== 'string') throw new CatalogInvalidError(`${at}.env.${name}`, 'must be a string');
      // These become ENV lines of the image, which cannot hold line breaks.
      if (/[\r\n\0]/.test(value)) throw new CatalogInvalidError(`${at}.env.${name}`, 'must not contain line breaks or NUL');
      phase.env[name] = value;
    }
  }
  return phase;
}

/** Every runtime the catalog offers, in the spelling of spec.runtime (e.g. "nodejs14"). */
export function listRuntimes(catalog: RuntimeCatalog): string[] {
  return catalog.runtimes.flatMap((definition) => definition.versions.map((version) => definition.id + version.version));
}

/** The catalog entry for spec.runtime, or E_RUNTIME_UNKNOWN listing what exists. */
export function findRuntime(catalog: RuntimeCatalog, runtime: string, fn?: string): ResolvedRuntime {
  for (const definition of catalog.runtimes) {
    if (!runtime.startsWith(definition.id)) continue;
    const version = definition.versions.find((candidate) => definition.id + candidate.version === runtime);
    if (version === undefined) continue;
    return {
      runtime,
      id: definition.id,
      version: version.version,
      name: version.name,
      depName: definition.depName,
      fileNameSuffix: definition.fileNameSuffix,
      phases: version.phases,
      imagePullSecrets: version.imagePullSecrets,
    };
  }
  throw new RuntimeUnknownError(runtime, listRuntimes(catalog), fn);
}
