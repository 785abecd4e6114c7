// Reading what the build and tag commands are given on the command line: the Function file (or
// stdin), the runtime catalog, the docker config and the per-registry transport flags.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { BuilderError } from '../lib/errors.ts';
import { FunctionTooLargeError } from '../lib/function/errors.ts';
import { FUNCTION_INPUT_LIMITS, TOO_LARGE_HINT } from '../lib/function/input-limits.ts';
import { loadDockerConfig, type LoadedDockerConfig } from '../lib/registry/load-docker-config.ts';
import type { RegistrySettings, RegistryTransport } from '../lib/registry/transport.ts';
import { parseRuntimeCatalog, type RuntimeCatalog } from '../lib/runtime/catalog.ts';
import { defaultRuntimeCatalog } from '../lib/runtime/default-catalog.ts';
import { UsageError, type CommandIO } from './command.ts';

/** A file named on the command line that cannot be read. */
export class InputFileError extends BuilderError {
  constructor(path: string, what: string, cause: unknown) {
    super('E_INPUT_UNREADABLE', 'user', `cannot read ${what} ${path}: ${(cause as Error).message}`, { cause, details: { path } });
  }
}

/** The options both `build` and `tag` take: how to find runtimes, credentials and registries. */
export const registryOptions = {
  registry: { type: 'string' },
  runtimes: { type: 'string' },
  'docker-config': { type: 'string' },
  'insecure-registry': { type: 'string', multiple: true },
  'tls-no-verify': { type: 'string', multiple: true },
  ca: { type: 'string', multiple: true },
  'allow-private-addresses': { type: 'boolean' },
  json: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

export function parseCommandLine<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** A file named on the command line, relative to the working directory; `what` names it in the error. */
export function readText(io: CommandIO, path: string, what: string): string {
  try {
    return readFileSync(resolve(io.cwd, path), 'utf8');
  } catch (error) {
    throw new InputFileError(path, what, error);
  }
}

/**
 * The Function document(s): a file, or stdin for "-". Past FUNCTION_INPUT_LIMITS.maxInputBytes it is
 * refused without reading the rest, so a huge input costs no more memory than the limit.
 */
export async function readFunctionInput(io: CommandIO, path: string): Promise<string> {
  const limit = FUNCTION_INPUT_LIMITS.maxInputBytes;
  if (path !== '-') {
    const size = fileSize(resolve(io.cwd, path));
    if (size !== undefined && size > limit) throw new FunctionTooLargeError(undefined, `the Function file ${path}`, size, limit, TOO_LARGE_HINT);
    return readText(io, path, 'the Function file');
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of io.stdin) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buffer.length;
    if (size > limit) throw new FunctionTooLargeError(undefined, 'the Function on stdin', undefined, limit, TOO_LARGE_HINT);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function fileSize(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch {
    return undefined; // readText reports what is wrong with it
  }
}

/** --runtimes: the runtime-images JSON, or a kubeless-config ConfigMap (YAML or JSON). Default: upstream Kubeless. */
export function loadCatalog(io: CommandIO, path: string | undefined): RuntimeCatalog {
  if (path === undefined) return defaultRuntimeCatalog();
  const text = readText(io, path, 'the runtime catalog');
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    try {
      document = parseYaml(text);
    } catch (error) {
      throw new InputFileError(path, 'the runtime catalog (neither JSON nor YAML)', error);
    }
  }
  return parseRuntimeCatalog(document as object);
}

/**
 * --docker-config FILE (a .dockerconfigjson, .dockercfg or docker CLI config.json); without it the
 * docker CLI's own config ($DOCKER_CONFIG/config.json or ~/.docker/config.json) when there is one.
 */
export function readDockerConfigFlag(io: CommandIO, path: string | undefined): LoadedDockerConfig {
  if (path !== undefined) return loadDockerConfig([{ source: path, read: () => readText(io, path, 'the docker config') }]);
  const file = join(io.env.DOCKER_CONFIG || join(io.env.HOME || homedir(), '.docker'), 'config.json');
  return loadDockerConfig([{ source: file, read: () => (existsSync(file) ? readText(io, file, 'the docker config') : undefined) }]);
}

/** --insecure-registry HOST (plain HTTP), --tls-no-verify HOST, --ca HOST=FILE, per host. */
export function registrySettings(io: CommandIO, values: { 'insecure-registry'?: string[]; 'tls-no-verify'?: string[]; ca?: string[] }): RegistrySettings {
  const settings: RegistrySettings = {};
  const entry = (host: string): RegistryTransport => (settings[host] ??= {});
  for (const host of values['insecure-registry'] ?? []) entry(host).insecure = true;
  for (const host of values['tls-no-verify'] ?? []) entry(host).tlsVerify = false;
  for (const pair of values.ca ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0 || eq === pair.length - 1) throw new UsageError(`--ca takes HOST=FILE (the PEM file of the CA that signs HOST's certificate), not "${pair}"`);
    entry(pair.slice(0, eq)).ca = readText(io, pair.slice(eq + 1), `the CA file for ${pair.slice(0, eq)}`);
  }
  return settings;
}
