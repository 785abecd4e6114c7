// Image references in the distribution grammar, normalised the way the Docker CLI does it:
//   [domain[:port]/]path[:tag][@algorithm:hex]
// The first path component is a domain only when it contains "." or ":", is "localhost", or has
// an upper-case letter (a repository never may); otherwise the image lives on Docker Hub.
import { BuilderError } from '../errors.ts';

export const DOCKER_HUB = 'docker.io';
export const NAME_MAX_LENGTH = 255;
const TAG_MAX_LENGTH = 128;

/** Registry hosts that all mean Docker Hub, in references and in credential keys. */
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

export class ImageReferenceError extends BuilderError {
  constructor(input: string, rule: string, details: Record<string, unknown> = {}) {
    super('E_REFERENCE_INVALID', 'user', `invalid image reference ${JSON.stringify(input)}: ${rule}`, {
      details: { reference: input, rule, ...details },
    });
  }
}

export class ImageReference {
  /** Normalised registry host (lower case, Docker Hub aliases folded into "docker.io"), with port. */
  readonly registry: string;
  /** Repository path on that registry, e.g. "library/node". */
  readonly repository: string;
  readonly tag: string | undefined;
  readonly digest: string | undefined;

  constructor(registry: string, repository: string, tag?: string, digest?: string) {
    this.registry = registry;
    this.repository = repository;
    this.tag = tag;
    this.digest = digest;
  }

  /** registry/repository, e.g. "docker.io/library/node". */
  get name(): string {
    return `${this.registry}/${this.repository}`;
  }

  /** What the registry API is asked for: the digest when there is one (it wins over a tag), else the tag, else "latest". */
  get tagOrDigest(): string {
    return this.digest ?? this.tag ?? 'latest';
  }

  /** The same image pinned to a digest, dropping the tag. */
  withDigest(digest: string): ImageReference {
    return new ImageReference(this.registry, this.repository, undefined, digest);
  }

  withTag(tag: string): ImageReference {
    return new ImageReference(this.registry, this.repository, tag, undefined);
  }

  toString(): string {
    return this.name + (this.tag === undefined ? '' : `:${this.tag}`) + (this.digest === undefined ? '' : `@${this.digest}`);
  }

  toJSON(): string {
    return this.toString();
  }
}

const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6_HOST = /^\[[0-9a-fA-F:.]+\]$/;
const PORT = /^[0-9]+$/;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]*$/;
const DIGEST = /^[a-z][a-z0-9]*(?:[+._-][a-z][a-z0-9]*)*:[a-zA-Z0-9=_-]+$/;
/** Hex lengths of the algorithms registries accept; anything else is refused rather than sent. */
const DIGEST_HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

/** Folds the Docker Hub aliases into "docker.io" and lower-cases a host[:port]. */
export function normaliseRegistryHost(host: string): string {
  const lower = host.toLowerCase();
  return DOCKER_HUB_ALIASES.has(lower) ? DOCKER_HUB : lower;
}

export function parseReference(input: string): ImageReference {
  if (typeof input !== 'string') throw new ImageReferenceError(String(input), 'a reference must be a string');
  const fail = (rule: string, details?: Record<string, unknown>): never => {
    throw new ImageReferenceError(input, rule, details);
  };
  if (input === '') fail('a reference must not be empty');
  if (input.trim() !== input || /\s/.test(input)) fail('a reference must not contain whitespace');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(input)) fail('a reference has no URL scheme; write host/repository, without "https://"');

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) fail('the digest after "@" must be algorithm:hex, e.g. sha256:<64 hex digits>');
    const [algorithm = '', hex = ''] = digest.split(':');
    const expected = DIGEST_HEX_LENGTH[algorithm];
    if (expected === undefined) fail(`digest algorithm "${algorithm}" is not supported (use sha256, sha384 or sha512)`);
    if (!/^[a-f0-9]+$/.test(hex) || hex.length !== expected) {
      fail(`a ${algorithm} digest must be ${expected} lower-case hex digits`);
    }
  }

  // A ":" after the last "/" starts the tag; one before it belongs to a registry port.
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (tag === '') fail('the tag after ":" must not be empty');
    if (tag.length > TAG_MAX_LENGTH) fail(`a tag must be at most ${TAG_MAX_LENGTH} characters`);
    if (!TAG.test(tag)) fail('a tag may contain only letters, digits, "_", "." and "-", and must not start with "." or "-"');
  }
  if (rest === '') fail('the repository name is missing');

  let registry = DOCKER_HUB;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash !== -1) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      registry = checkDomain(first, fail);
      path = rest.slice(slash + 1);
    }
  }
  if (registry === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;

  checkRepositoryPath(path, fail);
  const name = `${registry}/${path}`;
  if (name.length > NAME_MAX_LENGTH) fail(`the name "${name.slice(0, 40)}..." is longer than ${NAME_MAX_LENGTH} characters`, { tooLong: true });
  return new ImageReference(registry, path, tag, digest);
}

function checkDomain(domain: string, fail: (rule: string) => never): string {
  let host = domain;
  let port: string | undefined;
  if (domain.startsWith('[')) {
    const end = domain.indexOf(']');
    host = end === -1 ? domain : domain.slice(0, end + 1);
    const after = end === -1 ? '' : domain.slice(end + 1);
    if (after !== '') {
      if (!after.startsWith(':')) fail(`registry "${domain}" is not host[:port]`);
      port = after.slice(1);
    }
    if (!IPV6_HOST.test(host)) fail(`registry "${domain}" is not a valid bracketed IPv6 address`);
  } else {
    const colon = domain.indexOf(':');
    if (colon !== -1) {
      host = domain.slice(0, colon);
      port = domain.slice(colon + 1);
    }
    if (!host.split('.').every((component) => DOMAIN_COMPONENT.test(component))) {
      fail(`registry host "${host}" must be dot-separated letters, digits and inner "-"`);
    }
  }
  if (port !== undefined && (!PORT.test(port) || Number(port) < 1 || Number(port) > 65535)) {
    fail(`registry port "${port}" must be a number from 1 to 65535`);
  }
  return normaliseRegistryHost(domain);
}

function checkRepositoryPath(path: string, fail: (rule: string) => never): void {
  for (const component of path.split('/')) {
    if (component === '') fail('the repository path must not have empty components (check for "//" or a trailing "/")');
    if (component !== component.toLowerCase()) fail('the repository name must be lower case');
    if (!PATH_COMPONENT.test(component)) {
      fail(`repository path component "${component}" must be lower-case letters and digits, separated by ".", "_", "__" or "-"`);
    }
  }
}

/**
 * A repository path as the registry API wants it: checked against the grammar, with "library/" added
 * for single-component names on Docker Hub.
 */
export function normaliseRepository(registry: string, repository: string): string {
  const fail = (rule: string): never => {
    throw new ImageReferenceError(repository, rule);
  };
  if (repository === '') fail('the repository name is missing');
  checkRepositoryPath(repository, fail);
  const path = normaliseRegistryHost(registry) === DOCKER_HUB && !repository.includes('/') ? `library/${repository}` : repository;
  if (`${normaliseRegistryHost(registry)}/${path}`.length > NAME_MAX_LENGTH) fail(`the name is longer than ${NAME_MAX_LENGTH} characters`);
  return path;
}

export function isDigest(value: string): boolean {
  const [algorithm = '', hex = ''] = value.split(':');
  const expected = DIGEST_HEX_LENGTH[algorithm];
  return expected !== undefined && hex.length === expected && /^[a-f0-9]+$/.test(hex) && value === `${algorithm}:${hex}`;
}

export function isTag(value: string): boolean {
  return value.length <= TAG_MAX_LENGTH && TAG.test(value);
}
