// Reads Kubeless Function objects (kubeless.io/v1beta1) from YAML (several documents allowed),
// JSON, or plain objects, and validates every field the build depends on. Each error names the
// function, the field path and what the field must look like.
import { parseReference } from '../image/reference.ts';
import { BuilderError } from '../errors.ts';
import { decodeBase64Strict } from './base64.ts';
import { FunctionInvalidError, FunctionTooLargeError } from './errors.ts';
import { FUNCTION_INPUT_LIMITS, TOO_LARGE_HINT } from './input-limits.ts';
import { parseFunctionText } from './parse-text.ts';
import type { ArchiveKind, ContentSource, ContentType, FunctionEnvVar, FunctionSpec } from './spec.ts';
import { parseSourceUrl } from './url.ts';

const FUNCTION_API_VERSION = 'kubeless.io/v1beta1';
const FUNCTION_KIND = 'Function';
const DEFAULT_TIMEOUT = '180';

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** The module part names a file in /kubeless: no path separators, no dots, no shell specials. */
const MODULE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_-]*$/;
const FUNCTION_NAME = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;
const RUNTIME = /^[a-zA-Z_-]+[0-9.]+$/;
const TIMEOUT = /^[1-9][0-9]{0,8}$/;
const CHECKSUM = /^sha256:[0-9a-fA-F]{64}$/;
/** Kubernetes' rule for env names, except a leading "-", which the install command would read as an option. */
const ENV_NAME = /^[._a-zA-Z][-._a-zA-Z0-9]*$/;

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every Function in the input: YAML (multi-document), JSON, an object, an array, or a `List`. */
export function parseFunctions(input: string | Buffer | object): FunctionSpec[] {
  return functionObjects(input).map(({ value, where }) => validateFunction(value, where));
}

/**
 * The objects of the input that each should be a Function, not yet validated, with where they are
 * (e.g. "document 2 items[0]"): documents, arrays and `List` items flattened.
 */
export function functionObjects(input: string | Buffer | object): { value: unknown; where: string }[] {
  const objects: unknown[] = [];
  if (typeof input === 'string' || Buffer.isBuffer(input)) {
    objects.push(...parseFunctionText(input));
  } else {
    objects.push(input);
  }
  const found: { value: unknown; where: string }[] = [];
  const collect = (value: unknown, where: string): void => {
    if (Array.isArray(value)) {
      value.forEach((item, index) => collect(item, `${where}[${index}]`.trim()));
    } else if (isObject(value) && value.kind === 'List' && Array.isArray(value.items)) {
      value.items.forEach((item, index) => collect(item, `${where} items[${index}]`.trim()));
    } else {
      found.push({ value, where });
    }
  };
  objects.forEach((value, index) => collect(value, objects.length > 1 ? `document ${index + 1}` : ''));
  if (found.length === 0) throw new FunctionInvalidError(undefined, '(input)', 'holds no Function object');
  return found;
}

/** Exactly one Function; several or none is an error. */
export function parseFunction(input: string | Buffer | object): FunctionSpec {
  const specs = parseFunctions(input);
  if (specs.length !== 1) {
    throw new FunctionInvalidError(undefined, '(input)', `must hold exactly one Function, found ${specs.length}`);
  }
  return specs[0] as FunctionSpec;
}

function validateFunction(value: unknown, where: string): FunctionSpec {
  if (!isObject(value)) {
    throw new FunctionInvalidError(undefined, '(input)', 'must be a Function object', where === '' ? {} : { location: where });
  }
  const metadata = isObject(value.metadata) ? value.metadata : undefined;
  const rawName = metadata?.name;
  const rawNamespace = metadata?.namespace;
  const namespace = typeof rawNamespace === 'string' && rawNamespace !== '' ? rawNamespace : 'default';
  const label = typeof rawName === 'string' && rawName !== '' ? `${namespace}/${rawName}` : undefined;
  const fail = (field: string, expected: string): never => {
    throw new FunctionInvalidError(label, field, expected, where === '' ? {} : { location: where });
  };

  if (value.apiVersion !== FUNCTION_API_VERSION) {
    fail('apiVersion', `must be ${FUNCTION_API_VERSION}, found ${JSON.stringify(value.apiVersion ?? null)}`);
  }
  if (value.kind !== FUNCTION_KIND) fail('kind', `must be ${FUNCTION_KIND}, found ${JSON.stringify(value.kind ?? null)}`);
  if (metadata === undefined) fail('metadata', 'must be an object with a name');
  if (typeof rawName !== 'string' || rawName === '') fail('metadata.name', 'is required');
  const name = rawName as string;
  if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
    fail('metadata.name', 'must be a lower-case DNS-1123 name (letters, digits, "-" and "."), at most 253 characters');
  }
  if (rawNamespace !== undefined && rawNamespace !== '' &&
      (typeof rawNamespace !== 'string' || rawNamespace.length > 63 || !DNS1123_LABEL.test(rawNamespace))) {
    fail('metadata.namespace', 'must be a lower-case DNS-1123 label (letters, digits and "-"), at most 63 characters');
  }
  const uid = metadata?.uid;
  if (uid !== undefined && typeof uid !== 'string') fail('metadata.uid', 'must be a string');

  const spec = value.spec;
  if (!isObject(spec)) return fail('spec', 'must be an object') as never;

  // handler: <module>.<function>
  const handler = spec.handler;
  if (typeof handler !== 'string' || handler === '') fail('spec.handler', 'is required: <module>.<function>, e.g. handler.hello');
  const parts = (handler as string).split('.');
  if (parts.length !== 2) fail('spec.handler', `must be <module>.<function> with exactly one ".", found ${JSON.stringify(handler)}`);
  const [module = '', functionName = ''] = parts;
  if (module.length > 200 || !MODULE_NAME.test(module)) {
    fail('spec.handler', `module ${JSON.stringify(module)} must be a file name: letters, digits, "_" and "-" (no "/" or "..")`);
  }
  if (functionName.length > 200 || !FUNCTION_NAME.test(functionName)) {
    fail('spec.handler', `function ${JSON.stringify(functionName)} must be an identifier: letters, digits, "_", "$" and "-", not starting with a digit`);
  }

  const runtime = spec.runtime;
  if (typeof runtime !== 'string' || runtime === '') fail('spec.runtime', 'is required: runtime ID and version, e.g. nodejs14');
  if (!RUNTIME.test(runtime as string)) {
    fail('spec.runtime', `must be a runtime ID followed by its version, e.g. nodejs14 or python3.8, found ${JSON.stringify(runtime)}`);
  }

  const contentType = parseContentType(spec['function-content-type'], fail);

  const source = spec.function;
  if (typeof source !== 'string' || source === '') fail('spec.function', 'is required: the source text, base64 text or URL');
  const text = source as string;
  if (contentType.source !== 'url' && Buffer.byteLength(text) > FUNCTION_INPUT_LIMITS.maxSourceBytes) {
    throw new FunctionTooLargeError(label, 'spec.function', Buffer.byteLength(text), FUNCTION_INPUT_LIMITS.maxSourceBytes, TOO_LARGE_HINT);
  }
  if (contentType.source === 'url' && text.length > 8192) fail('spec.function', 'is a URL longer than 8192 characters');
  if (contentType.source === 'base64' && decodeBase64Strict(text) === undefined) {
    fail('spec.function', 'is not valid base64 (content type base64 expects standard base64 with "=" padding)');
  }
  if (contentType.source === 'url') {
    const url = parseSourceUrl(text);
    if (typeof url === 'string') fail('spec.function', url);
  }

  let checksum: string | undefined;
  const rawChecksum = spec.checksum;
  if (rawChecksum !== undefined && rawChecksum !== null && rawChecksum !== '') {
    if (typeof rawChecksum !== 'string') fail('spec.checksum', 'must be a string sha256:<64 hex digits>');
    const value = rawChecksum as string;
    if (!CHECKSUM.test(value)) {
      const algorithm = /^([A-Za-z0-9-]+):/.exec(value)?.[1];
      fail('spec.checksum', algorithm !== undefined && algorithm.toLowerCase() !== 'sha256'
        ? `uses ${algorithm}; only sha256:<64 hex digits> is supported`
        : 'must be sha256:<64 hex digits>');
    }
    checksum = value.toLowerCase();
  }

  const deps = spec.deps;
  if (deps !== undefined && deps !== null && typeof deps !== 'string') fail('spec.deps', 'must be a string: the content of the dependency file');
  if (typeof deps === 'string' && Buffer.byteLength(deps) > FUNCTION_INPUT_LIMITS.maxDepsBytes) {
    throw new FunctionTooLargeError(label, 'spec.deps', Buffer.byteLength(deps), FUNCTION_INPUT_LIMITS.maxDepsBytes, 'a dependency file lists packages; it does not hold them');
  }

  let timeout = DEFAULT_TIMEOUT;
  const rawTimeout = spec.timeout;
  if (rawTimeout !== undefined && rawTimeout !== null && rawTimeout !== '') {
    // Kubernetes stores it as a string; an unquoted YAML number is taken as meant.
    const text = typeof rawTimeout === 'number' ? String(rawTimeout) : rawTimeout;
    if (typeof text !== 'string' || !TIMEOUT.test(text)) fail('spec.timeout', `must be a positive whole number of seconds as a string, e.g. "180", found ${JSON.stringify(rawTimeout)}`);
    timeout = text as string;
  }

  const { env, prebuiltImage, warnings } = parseDeployment(spec.deployment, fail);

  const result: FunctionSpec = {
    name,
    namespace,
    handler: { module, function: functionName },
    runtime: runtime as string,
    contentType,
    function: text,
    timeout,
    env,
    warnings,
  };
  if (typeof uid === 'string' && uid !== '') result.uid = uid;
  if (checksum !== undefined) result.checksum = checksum;
  if (typeof deps === 'string' && deps !== '') result.deps = deps;
  if (prebuiltImage !== undefined) result.prebuiltImage = prebuiltImage;
  return result;
}

function parseContentType(raw: unknown, fail: (field: string, expected: string) => never): ContentType {
  const field = 'spec.function-content-type';
  const expected = 'must be text, base64 or url, optionally followed by +zip or +compressedtar, and +deps (e.g. base64+zip, url+compressedtar+deps)';
  if (raw !== undefined && raw !== null && typeof raw !== 'string') fail(field, expected);
  const [head = '', ...modifiers] = ((raw as string | undefined | null) ?? '').split('+');
  let source: ContentSource;
  if (head === '' || head === 'text') source = 'text';
  else if (head === 'base64' || head === 'url') source = head;
  else return fail(field, `${expected}; found ${JSON.stringify(raw)}`);
  let archive: ArchiveKind | undefined;
  let depsIncluded = false;
  for (const modifier of modifiers) {
    if (modifier === 'zip' || modifier === 'compressedtar') {
      if (archive !== undefined) fail(field, `names two archive formats in ${JSON.stringify(raw)}; use one of +zip or +compressedtar`);
      archive = modifier;
    } else if (modifier === 'deps') {
      if (depsIncluded) fail(field, `repeats +deps in ${JSON.stringify(raw)}`);
      depsIncluded = true;
    } else {
      fail(field, `${expected}; unknown part ${JSON.stringify(modifier)} in ${JSON.stringify(raw)}`);
    }
  }
  if (archive !== undefined && source === 'text') {
    fail(field, `${JSON.stringify(raw)}: an archive cannot be plain text; use base64+${archive} or url+${archive}`);
  }
  if (depsIncluded && archive === undefined) {
    fail(field, `${JSON.stringify(raw)}: +deps means the archive holds the deps file, so it needs +zip or +compressedtar`);
  }
  const type: ContentType = { source, depsIncluded };
  if (archive !== undefined) type.archive = archive;
  return type;
}

function parseDeployment(
  deployment: unknown,
  fail: (field: string, expected: string) => never,
): { env: FunctionEnvVar[]; prebuiltImage?: string; warnings: string[] } {
  const warnings: string[] = [];
  const env: FunctionEnvVar[] = [];
  if (deployment === undefined || deployment === null) return { env, warnings };
  let path = 'spec.deployment';
  let node: unknown = deployment;
  for (const key of ['spec', 'template', 'spec']) {
    if (!isObject(node)) return fail(path, 'must be an object (a partial apps/v1 Deployment)');
    path += `.${key}`;
    node = node[key];
    if (node === undefined || node === null) return { env, warnings };
  }
  if (!isObject(node)) return fail(path, 'must be an object');
  const containers = node.containers;
  path += '.containers';
  if (containers === undefined || containers === null) return { env, warnings };
  if (!Array.isArray(containers)) return fail(path, 'must be a list of containers');
  const container: unknown = containers[0];
  if (container === undefined) return { env, warnings };
  path += '[0]';
  if (!isObject(container)) return fail(path, 'must be an object');

  let prebuiltImage: string | undefined;
  if (container.image !== undefined && container.image !== null && container.image !== '') {
    if (typeof container.image !== 'string') return fail(`${path}.image`, 'must be an image reference string');
    try {
      parseReference(container.image);
    } catch (error) {
      return fail(`${path}.image`, error instanceof BuilderError ? error.message : 'must be an image reference');
    }
    prebuiltImage = container.image;
  }

  const rawEnv = container.env;
  if (rawEnv !== undefined && rawEnv !== null) {
    if (!Array.isArray(rawEnv)) return fail(`${path}.env`, 'must be a list of {name, value}');
    rawEnv.forEach((entry: unknown, index) => {
      const at = `${path}.env[${index}]`;
      if (!isObject(entry)) fail(at, 'must be an object {name, value}');
      const item = entry as Json;
      if (typeof item.name !== 'string' || !ENV_NAME.test(item.name)) {
        fail(`${at}.name`, `must be an environment variable name (letters, digits, "_", "-", "."; not starting with a digit or "-"), found ${JSON.stringify(item.name ?? null)}`);
      }
      const name = item.name as string;
      if (item.valueFrom !== undefined && item.valueFrom !== null) {
        // Secrets and field references exist only in the running pod; the Deployment still sets
        // them there, so the build goes on without them rather than refusing the Function.
        warnings.push(`${at} (${name}) uses valueFrom, which cannot be resolved at build time: the dependency install runs without it`);
        return;
      }
      const value = item.value ?? '';
      if (typeof value !== 'string') fail(`${at}.value`, `must be a string (quote it in YAML), found ${JSON.stringify(value)}`);
      if ((value as string).includes('\0')) fail(`${at}.value`, 'must not contain a NUL character');
      env.push({ name, value: value as string });
    });
  }
  const result: { env: FunctionEnvVar[]; prebuiltImage?: string; warnings: string[] } = { env, warnings };
  if (prebuiltImage !== undefined) result.prebuiltImage = prebuiltImage;
  return result;
}
