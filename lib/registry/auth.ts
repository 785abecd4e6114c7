// Registry authentication: WWW-Authenticate challenges, Basic credentials, Bearer tokens from the
// realm (anonymous, Basic-authenticated, or exchanged from an identity token), cached per scope until
// they expire, and registry tokens sent as they are. Every secret seen here is registered with the
// SecretSet so the client can scrub it from anything it reports.
import { sha256Digest } from './manifest.ts';
import { BuilderError } from '../errors.ts';
import type { RegistryCredential } from './credentials.ts';
import { errorFromResponse, RegistryError, type RegistryErrorContext } from './errors.ts';
import { readBody, readText, type HttpTransport } from './transport.ts';
import { redactable, replaceSecrets } from '../redact.ts';

export interface Challenge {
  /** Lower case: "basic", "bearer", ... */
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses WWW-Authenticate values (RFC 9110 §11.6.1): several challenges per header, comma-separated
 * auth-params whose values are tokens or quoted strings (which may hold commas and escaped quotes).
 */
export function parseWwwAuthenticate(value: string | string[] | undefined): Challenge[] {
  if (value === undefined) return [];
  if (Array.isArray(value)) return value.flatMap((v) => parseWwwAuthenticate(v));
  const challenges: Challenge[] = [];
  const token = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+/;
  let rest = value;
  const skip = (pattern: RegExp) => {
    rest = rest.replace(pattern, '');
  };
  let current: Challenge | undefined;
  for (;;) {
    skip(/^[\s,]+/);
    if (rest === '') break;
    const name = token.exec(rest)?.[0];
    if (name === undefined) break; // malformed: keep what was understood
    rest = rest.slice(name.length);
    const afterSpaces = rest.replace(/^\s*/, '');
    if (current !== undefined && afterSpaces.startsWith('=') && !afterSpaces.startsWith('==')) {
      rest = afterSpaces.slice(1).replace(/^\s*/, '');
      let paramValue: string;
      if (rest.startsWith('"')) {
        let i = 1;
        paramValue = '';
        while (i < rest.length && rest[i] !== '"') {
          if (rest[i] === '\\' && i + 1 < rest.length) i++;
          paramValue += rest[i];
          i++;
        }
        rest = rest.slice(i + 1);
      } else {
        paramValue = /^[^,\s]*/.exec(rest)?.[0] ?? '';
        rest = rest.slice(paramValue.length);
      }
      current.params[name.toLowerCase()] = paramValue;
      continue;
    }
    // A new challenge; a token68 after the scheme (e.g. "Negotiate abc==") is kept as `token68`.
    current = { scheme: name.toLowerCase(), params: {} };
    challenges.push(current);
    const token68 = /^\s+([A-Za-z0-9._~+/-]+=*)\s*(?:,|$)/.exec(rest);
    if (token68 && !/^\s+[!#$%&'*+.^_`|~0-9A-Za-z-]+\s*=[^=]/.test(rest)) {
      current.params.token68 = token68[1] ?? '';
      rest = rest.slice(token68[0].length);
    }
  }
  return challenges;
}

/** Merges scope strings ("repository:name:pull,push"), uniting actions per resource; sorted. */
export function mergeScopes(...lists: string[][]): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const scope of lists.flat()) {
    for (const single of scope.split(' ').filter(Boolean)) {
      const last = single.lastIndexOf(':');
      if (last <= 0) continue;
      const resource = single.slice(0, last);
      const actions = byResource.get(resource) ?? new Set<string>();
      for (const action of single.slice(last + 1).split(',').filter(Boolean)) actions.add(action);
      byResource.set(resource, actions);
    }
  }
  return [...byResource.entries()].map(([resource, actions]) => `${resource}:${[...actions].sort().join(',')}`).sort();
}

/** True when every resource/action in `wanted` is in `held`. */
export function covers(held: string[], wanted: string[]): boolean {
  const have = new Map(mergeScopes(held).map((s) => [s.slice(0, s.lastIndexOf(':')), new Set(s.slice(s.lastIndexOf(':') + 1).split(','))]));
  return mergeScopes(wanted).every((s) => {
    const actions = have.get(s.slice(0, s.lastIndexOf(':')));
    return actions !== undefined && s.slice(s.lastIndexOf(':') + 1).split(',').every((a) => actions.has(a));
  });
}

/** Values that must never appear in a message or log line, and the scrubber for them. */
export class SecretSet {
  readonly #values = new Set<string>();
  /** redactable(#values), made again only when a value is added: redact() runs on every log line. */
  #ordered: string[] = [];

  add(value: string | undefined): void {
    if (value === undefined || this.#values.has(value)) return;
    this.#values.add(value);
    this.#ordered = redactable(this.#values);
  }

  redact(text: string): string {
    return replaceSecrets(text, this.#ordered, '<redacted>');
  }

  /**
   * Scrubs an error in place (and its cause chain) and returns it: message, stack, and for a
   * BuilderError its details, which toJSON() prints and which hold what a registry or token endpoint
   * answered, so an echoed password or token would otherwise reach the JSON error output.
   */
  redactError<T>(error: T): T {
    for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
      e.message = this.redact(e.message);
      if (e.stack) e.stack = this.redact(e.stack);
      if (e instanceof BuilderError) this.#redactInPlace(e.details, new Set());
      if (e instanceof RegistryError) this.#redactInPlace(e.registryErrors, new Set());
    }
    return error;
  }

  // In place, because the details and registryErrors of an error are readonly properties (and share
  // the same entry objects).
  #redactInPlace(value: unknown, seen: Set<object>): void {
    if (value === null || typeof value !== 'object' || seen.has(value)) return;
    seen.add(value);
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const item = record[key];
      if (typeof item === 'string') record[key] = this.redact(item);
      else this.#redactInPlace(item, seen);
    }
  }

  redactValue(value: unknown): unknown {
    if (typeof value === 'string') return this.redact(value);
    if (Array.isArray(value)) return value.map((v) => this.redactValue(v));
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.redactValue(v)]));
    return value;
  }
}

function basicAuth(username: string, password: string): string {
  return Buffer.from(`${username}:${password}`).toString('base64');
}

interface CachedToken {
  scopes: string[];
  token: string;
  /** The realm that issued it: a registry that moves to another token server gets new tokens. */
  realm: string;
  expiresAt: number;
}

export interface Authorization {
  header: string | undefined;
  /** The token came from the cache (so a 401 may mean it was revoked: fetch a fresh one). */
  cached: boolean;
  scheme: 'none' | 'basic' | 'bearer';
}

export interface AuthenticatorOptions {
  registry: string;
  credential: RegistryCredential | undefined;
  /** Keys present in the docker config, for "no key matched" messages. */
  configKeys: string[];
  transport: HttpTransport;
  secrets: SecretSet;
  log: (event: Record<string, unknown>) => void;
  clientId?: string;
}

// What clients learn is kept for the next client in this process, so that a controller's checks do
// not each start with a 401 (and, for Bearer registries, a token request): the challenge by registry
// (it says nothing secret), the tokens by registry and by who asked for them (a hash of the
// credential, so different credentials never share a token). Tokens stay in memory only.
const learnedChallenges = new Map<string, Challenge>();
const sharedTokens = new Map<string, CachedToken[]>();

function tokenOwner(registry: string, credential: RegistryCredential | undefined): string {
  const secret = credential === undefined ? 'anonymous' : JSON.stringify([credential.key, credential.username, credential.password, credential.identityToken]);
  return `${registry} ${sha256Digest(secret)}`;
}

/** What a registry accepts, learned from its /v2/ ping or a later 401. */
export class Authenticator {
  challenge: Challenge | undefined;
  readonly #options: AuthenticatorOptions;
  readonly #owner: string;
  readonly #pending = new Map<string, Promise<CachedToken>>();
  #refreshToken: string | undefined;

  constructor(options: AuthenticatorOptions) {
    this.#options = options;
    this.challenge = learnedChallenges.get(options.registry);
    this.#owner = tokenOwner(options.registry, options.credential);
    const credential = options.credential;
    this.#refreshToken = credential?.identityToken;
    for (const secret of [credential?.password, credential?.identityToken, credential?.registryToken]) options.secrets.add(secret);
    if (credential?.username !== undefined && credential.password !== undefined) {
      options.secrets.add(basicAuth(credential.username, credential.password));
    }
  }

  get credentialKey(): string | null {
    return this.#options.credential?.key ?? null;
  }

  /** Takes the strongest challenge we can answer: Bearer over Basic. Returns whether it changed. */
  learn(challenges: Challenge[]): boolean {
    const chosen = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
    if (chosen === undefined) return false;
    const identity = (c: Challenge | undefined) => (c ? `${c.scheme} ${c.params.realm ?? ''} ${c.params.service ?? ''}` : '');
    const changed = identity(chosen) !== identity(this.challenge);
    this.challenge = chosen;
    learnedChallenges.set(this.#options.registry, chosen);
    return changed;
  }

  async authorization(scopes: string[], context: RegistryErrorContext): Promise<Authorization> {
    const credential = this.#options.credential;
    if (credential?.registryToken !== undefined) return { header: `Bearer ${credential.registryToken}`, cached: false, scheme: 'bearer' };
    const challenge = this.challenge;
    if (challenge === undefined) return { header: undefined, cached: false, scheme: 'none' };
    if (challenge.scheme === 'basic') {
      if (credential?.username === undefined || credential.password === undefined) return { header: undefined, cached: false, scheme: 'none' };
      return { header: `Basic ${basicAuth(credential.username, credential.password)}`, cached: false, scheme: 'basic' };
    }
    if (challenge.scheme !== 'bearer') return { header: undefined, cached: false, scheme: 'none' };
    const wanted = mergeScopes(scopes);
    const now = Date.now();
    const tokens = (sharedTokens.get(this.#owner) ?? []).filter((t) => t.expiresAt > now && t.realm === challenge.params.realm);
    sharedTokens.set(this.#owner, tokens);
    const hit = tokens.find((t) => covers(t.scopes, wanted));
    if (hit) {
      // Fetched by another client perhaps: this one's errors must scrub it too.
      this.#options.secrets.add(hit.token);
      this.#options.log({ event: 'token', level: 'debug', scopes: wanted, cached: true });
      return { header: `Bearer ${hit.token}`, cached: true, scheme: 'bearer' };
    }
    const key = wanted.join(' ');
    let pending = this.#pending.get(key);
    if (pending === undefined) {
      pending = this.#fetchToken(challenge, wanted, context).finally(() => this.#pending.delete(key));
      this.#pending.set(key, pending);
    }
    const fresh = await pending;
    return { header: `Bearer ${fresh.token}`, cached: false, scheme: 'bearer' };
  }

  /** Forgets cached tokens covering these scopes (the registry refused one). */
  forget(scopes: string[]): void {
    const wanted = mergeScopes(scopes);
    sharedTokens.set(this.#owner, (sharedTokens.get(this.#owner) ?? []).filter((t) => !covers(t.scopes, wanted)));
  }

  async #fetchToken(challenge: Challenge, scopes: string[], context: RegistryErrorContext): Promise<CachedToken> {
    const { transport, secrets, credential, log } = this.#options;
    const realm = challenge.params.realm;
    const tokenContext: RegistryErrorContext = { ...context, action: `get a token to ${context.action}`, credentialKey: this.credentialKey };
    if (!realm) {
      throw new RegistryError('E_REGISTRY_PROTOCOL', `registry ${this.#options.registry} asked for a Bearer token but named no realm to get it from`, tokenContext);
    }
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RegistryError('E_REGISTRY_PROTOCOL', `registry ${this.#options.registry} named an invalid token realm ${JSON.stringify(realm)}`, tokenContext);
    }
    const service = challenge.params.service;
    let response;
    let grant: string;
    if (this.#refreshToken !== undefined) {
      grant = 'refresh_token';
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: this.#refreshToken, client_id: this.#options.clientId ?? 'function-image-builder' });
      if (service) form.set('service', service);
      if (scopes.length > 0) form.set('scope', scopes.join(' '));
      response = await transport.send({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
        idempotent: true,
        context: tokenContext,
      });
    } else {
      if (service) url.searchParams.set('service', service);
      for (const scope of scopes) url.searchParams.append('scope', scope);
      const headers: Record<string, string> = {};
      if (credential?.username !== undefined && credential.password !== undefined) {
        grant = 'basic';
        url.searchParams.set('account', credential.username);
        headers.authorization = `Basic ${basicAuth(credential.username, credential.password)}`;
      } else {
        grant = 'anonymous';
      }
      response = await transport.send({ method: 'GET', url, headers, idempotent: true, context: tokenContext });
    }
    if (response.statusCode !== 200) {
      const text = await readText(response);
      throw errorFromResponse(response.statusCode, text, tokenContext, { configKeys: this.#options.configKeys });
    }
    const body = await readBody(response, 1024 * 1024, tokenContext);
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown; refresh_token?: unknown };
    try {
      parsed = JSON.parse(body.toString('utf8')) as typeof parsed;
    } catch {
      throw new RegistryError('E_REGISTRY_PROTOCOL', `the token endpoint ${url.origin}${url.pathname} of registry ${this.#options.registry} answered something that is not JSON`, tokenContext);
    }
    const token = typeof parsed.access_token === 'string' && parsed.access_token ? parsed.access_token : parsed.token;
    if (typeof token !== 'string' || token === '') {
      throw new RegistryError('E_REGISTRY_PROTOCOL', `the token endpoint ${url.origin}${url.pathname} of registry ${this.#options.registry} answered without a token`, tokenContext);
    }
    secrets.add(token);
    if (typeof parsed.refresh_token === 'string' && parsed.refresh_token !== '') {
      secrets.add(parsed.refresh_token);
      if (this.#refreshToken !== undefined) this.#refreshToken = parsed.refresh_token;
    }
    // The distribution token spec: expires_in defaults to 60 s. Renew a little early so a token
    // does not expire between being picked and being checked.
    const expiresIn = typeof parsed.expires_in === 'number' && parsed.expires_in > 0 ? parsed.expires_in : 60;
    const entry = { scopes, token, realm, expiresAt: Date.now() + (expiresIn - Math.min(10, expiresIn / 4)) * 1000 };
    sharedTokens.set(this.#owner, [...(sharedTokens.get(this.#owner) ?? []), entry]);
    log({ event: 'token', level: 'debug', realm: url.origin + url.pathname, scopes, cached: false, grant, expiresInSeconds: expiresIn });
    return entry;
  }
}

