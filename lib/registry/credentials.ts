// Registry credentials from a Kubernetes docker-registry Secret: `.dockerconfigjson` ({"auths": {...}})
// or the legacy `.dockercfg` (the bare map), as text, Buffer, the Secret's base64 `data` value, a parsed
// object or the Secret itself. Keys are written in many forms ("https://index.docker.io/v1/",
// "http://host:5000/v2", "host:port", ...); each is reduced to the registry host it names.
//
// Secrets never leave this module in readable form except through the fields the client reads:
// errors name the key, never the value, and a credential prints itself redacted.
import { inspect } from 'node:util';
import { BuilderError } from '../errors.ts';
import { normaliseRegistryHost } from '../image/reference.ts';

export class CredentialsError extends BuilderError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('E_CREDENTIALS_INVALID', 'user', message, { details });
  }
}

export class RegistryCredential {
  /** The config key this credential was found under, exactly as written. Safe to log. */
  readonly key: string;
  /** Scheme written in the key ("http" for "http://host:5000/v2"), a hint for plain-HTTP registries. */
  readonly keyScheme: 'http' | 'https' | undefined;
  readonly username: string | undefined;
  readonly password: string | undefined;
  /** OAuth2 refresh token, exchanged at the token endpoint for access tokens. */
  readonly identityToken: string | undefined;
  /** A bearer token sent as is. */
  readonly registryToken: string | undefined;

  constructor(fields: {
    key: string;
    keyScheme?: 'http' | 'https' | undefined;
    username?: string | undefined;
    password?: string | undefined;
    identityToken?: string | undefined;
    registryToken?: string | undefined;
  }) {
    this.key = fields.key;
    this.keyScheme = fields.keyScheme;
    this.username = fields.username;
    this.password = fields.password;
    this.identityToken = fields.identityToken;
    this.registryToken = fields.registryToken;
  }

  /** What kind of secret this is, for logs: never the secret itself. */
  get type(): 'basic' | 'identitytoken' | 'registrytoken' {
    if (this.registryToken !== undefined) return 'registrytoken';
    if (this.identityToken !== undefined) return 'identitytoken';
    return 'basic';
  }

  toJSON(): Record<string, unknown> {
    return { key: this.key, type: this.type, username: this.username, secret: '<redacted>' };
  }

  [inspect.custom](): string {
    return `RegistryCredential ${JSON.stringify(this.toJSON())}`;
  }
}

export interface DockerConfigEntry {
  key: string;
  /** Normalised registry host (Docker Hub aliases folded into "docker.io"). */
  host: string;
  credential: RegistryCredential;
}

export interface DockerConfig {
  format: 'dockerconfigjson' | 'dockercfg';
  entries: DockerConfigEntry[];
  /** Things that were ignored (credential helpers, empty entries), safe to log. */
  warnings: string[];
}

/** The host a config key names, and the scheme if the key had one. */
export function registryHostFromKey(key: string): { host: string; scheme: 'http' | 'https' | undefined } {
  let rest = key.trim();
  let scheme: 'http' | 'https' | undefined;
  const match = /^([a-z][a-z0-9+.-]*):\/\//i.exec(rest);
  if (match) {
    const written = (match[1] ?? '').toLowerCase();
    if (written === 'http' || written === 'https') scheme = written;
    rest = rest.slice(match[0].length);
  }
  const slash = rest.indexOf('/');
  if (slash !== -1) rest = rest.slice(0, slash);
  return { host: normaliseRegistryHost(rest), scheme };
}

export function parseDockerConfig(input: string | Buffer | object): DockerConfig {
  const document = toObject(input);
  const warnings: string[] = [];
  let map: unknown;
  let format: DockerConfig['format'];
  if ('auths' in document) {
    format = 'dockerconfigjson';
    map = document.auths ?? {};
  } else {
    format = 'dockercfg';
    map = Object.fromEntries(Object.entries(document).filter(([key]) => key !== 'credsStore' && key !== 'credHelpers'));
  }
  // Helpers are programs on the machine that wrote the file; a builder pod has none of them.
  if (typeof document.credsStore === 'string' && document.credsStore !== '') {
    warnings.push(`credsStore "${document.credsStore}" ignored: credential helpers cannot run in the builder; put the credentials in "auths"`);
  }
  if (isObject(document.credHelpers)) {
    for (const [registry, helper] of Object.entries(document.credHelpers)) {
      warnings.push(`credHelpers entry "${registry}" (${String(helper)}) ignored: credential helpers cannot run in the builder; put the credentials in "auths"`);
    }
  }
  if (!isObject(map)) throw new CredentialsError(`docker config: "auths" must be an object of registry → credentials`);

  const entries: DockerConfigEntry[] = [];
  for (const [key, value] of Object.entries(map)) {
    if (!isObject(value)) throw new CredentialsError(`docker config entry "${key}" must be an object`, { key });
    const { host, scheme } = registryHostFromKey(key);
    if (host === '') throw new CredentialsError(`docker config key "${key}" names no registry host`, { key });
    const credential = credentialFromEntry(key, scheme, value);
    if (credential === undefined) {
      warnings.push(`docker config entry "${key}" has no auth, username/password, identitytoken or registrytoken: ignored`);
      continue;
    }
    entries.push({ key, host, credential });
  }
  return { format, entries, warnings };
}

/**
 * The credential for a registry host (or URL), or undefined when no key names it. When several keys
 * name the same host, the one written as the bare host wins, then keys with a path, then https://, then
 * http://; file order breaks ties.
 */
export function resolveCredentials(config: DockerConfig | undefined, registryHost: string): RegistryCredential | undefined {
  if (config === undefined) return undefined;
  const { host } = registryHostFromKey(registryHost);
  let best: { rank: number; credential: RegistryCredential } | undefined;
  for (const entry of config.entries) {
    if (entry.host !== host) continue;
    const rank = keyRank(entry.key, host);
    if (best === undefined || rank < best.rank) best = { rank, credential: entry.credential };
  }
  return best?.credential;
}

function keyRank(key: string, host: string): number {
  const lower = key.trim().toLowerCase();
  if (lower === host) return 0;
  if (!lower.includes('://')) return 1;
  if (lower.startsWith('https://')) return 2;
  return 3;
}

function credentialFromEntry(key: string, keyScheme: 'http' | 'https' | undefined, entry: Record<string, unknown>): RegistryCredential | undefined {
  const text = (field: string): string | undefined => {
    const value = entry[field];
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string') throw new CredentialsError(`docker config entry "${key}": "${field}" must be a string`, { key, field });
    return value;
  };
  let username = text('username');
  let password = text('password');
  const auth = text('auth');
  if (auth !== undefined) {
    // `auth` is what docker login writes and what the Secret generator fills; it wins over the split fields.
    const decoded = decodeBase64(auth);
    const colon = decoded === undefined ? -1 : decoded.indexOf(':');
    if (decoded === undefined || colon === -1) {
      throw new CredentialsError(`docker config entry "${key}": "auth" must be base64 of "username:password"`, { key, field: 'auth' });
    }
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  const identityToken = text('identitytoken');
  const registryToken = text('registrytoken');
  if (username === undefined && password === undefined && identityToken === undefined && registryToken === undefined) return undefined;
  if (identityToken === undefined && registryToken === undefined && (username === undefined) !== (password === undefined)) {
    const missing = username === undefined ? 'username' : 'password';
    throw new CredentialsError(`docker config entry "${key}" has no ${missing}; give "auth" or both "username" and "password"`, { key, field: missing });
  }
  return new RegistryCredential({ key, keyScheme, username, password, identityToken, registryToken });
}

function toObject(input: string | Buffer | object): Record<string, unknown> {
  if (Buffer.isBuffer(input) || input instanceof Uint8Array) return toObject(Buffer.from(input).toString('utf8'));
  if (typeof input === 'string') {
    const text = input.trim();
    const json = text.startsWith('{') ? text : decodeBase64(text);
    if (json === undefined || !json.trim().startsWith('{')) {
      throw new CredentialsError('docker config is neither JSON nor base64 of JSON (expected .dockerconfigjson or .dockercfg content)');
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch {
      // The parser's message quotes the text around the error, which may be a password: keep it out.
      throw new CredentialsError('docker config is not valid JSON (expected .dockerconfigjson or .dockercfg content)');
    }
    return toObject(parsed as object);
  }
  if (!isObject(input)) throw new CredentialsError('docker config must be a JSON object');
  // A whole Secret: use its payload.
  for (const field of ['data', 'stringData'] as const) {
    const data = input[field];
    if (isObject(data)) {
      const payload = data['.dockerconfigjson'] ?? data['.dockercfg'];
      if (typeof payload === 'string') return toObject(payload);
    }
  }
  return input;
}

function decodeBase64(text: string): string | undefined {
  const compact = text.replace(/\s+/g, '');
  if (compact === '' || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(compact)) return undefined;
  return Buffer.from(compact, compact.includes('-') || compact.includes('_') ? 'base64url' : 'base64').toString('utf8');
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
