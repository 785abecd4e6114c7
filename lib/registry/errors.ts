// Typed registry failures. Each names the registry, the repository and what was being done, carries
// the registry's own {"errors": [...]} codes when it sent them, and for authentication failures the
// docker config key that was tried — never a secret.
import { BuilderError, type ErrorKind } from '../errors.ts';

export type RegistryErrorCode =
  | 'E_REGISTRY_UNAUTHORIZED'
  | 'E_REGISTRY_DENIED'
  | 'E_REGISTRY_NOT_FOUND'
  | 'E_REGISTRY_TLS'
  | 'E_REGISTRY_UNREACHABLE'
  | 'E_REGISTRY_TIMEOUT'
  | 'E_REGISTRY_RATE_LIMITED'
  | 'E_REGISTRY_UNAVAILABLE'
  | 'E_REGISTRY_REJECTED'
  | 'E_REGISTRY_PROTOCOL'
  | 'E_REGISTRY_DIGEST_MISMATCH'
  | 'E_REGISTRY_PLATFORM_NOT_FOUND'
  | 'E_REGISTRY_DELETE_UNSUPPORTED';

const KIND: Record<RegistryErrorCode, ErrorKind> = {
  E_REGISTRY_UNAUTHORIZED: 'user',
  E_REGISTRY_DENIED: 'user',
  E_REGISTRY_NOT_FOUND: 'user',
  E_REGISTRY_TLS: 'user',
  E_REGISTRY_UNREACHABLE: 'infrastructure',
  E_REGISTRY_TIMEOUT: 'infrastructure',
  E_REGISTRY_RATE_LIMITED: 'infrastructure',
  E_REGISTRY_UNAVAILABLE: 'infrastructure',
  E_REGISTRY_REJECTED: 'user',
  E_REGISTRY_PROTOCOL: 'infrastructure',
  E_REGISTRY_DIGEST_MISMATCH: 'infrastructure',
  E_REGISTRY_PLATFORM_NOT_FOUND: 'user',
  // The registry's configuration forbids deletes: retrying cannot help, its operator has to allow them.
  E_REGISTRY_DELETE_UNSUPPORTED: 'user',
};

/** One entry of the distribution spec's error body. */
export interface RegistryErrorEntry {
  code: string;
  message: string;
}

/** What the client was doing; every field is safe to show. */
export interface RegistryErrorContext {
  registry: string;
  repository?: string | undefined;
  /** e.g. "pull manifest", "push blob", "list tags". */
  action: string;
  /** The docker config key whose credentials were used; null when no key matched the registry. */
  credentialKey?: string | null | undefined;
}

export class RegistryError extends BuilderError {
  override readonly code: RegistryErrorCode;
  readonly status: number | undefined;
  readonly registryErrors: RegistryErrorEntry[];

  constructor(
    code: RegistryErrorCode,
    message: string,
    context: RegistryErrorContext,
    extra: { status?: number | undefined; registryErrors?: RegistryErrorEntry[]; cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    const details: Record<string, unknown> = {
      registry: context.registry,
      action: context.action,
      ...(context.repository === undefined ? {} : { repository: context.repository }),
      ...(context.credentialKey === undefined ? {} : { credentialKey: context.credentialKey }),
      ...(extra.status === undefined ? {} : { status: extra.status }),
      ...(extra.registryErrors?.length ? { registryErrors: extra.registryErrors } : {}),
      ...extra.details,
    };
    super(code, KIND[code], message, { cause: extra.cause, details });
    this.code = code;
    this.status = extra.status;
    this.registryErrors = extra.registryErrors ?? [];
  }
}

/** The `errors` of a distribution error body, or [] when the body is something else. */
export function parseErrorBody(text: string): RegistryErrorEntry[] {
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== 'object' || parsed === null) return [];
    const errors = (parsed as { errors?: unknown }).errors;
    if (Array.isArray(errors)) {
      return errors
        .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
        .map((e) => ({ code: String(e.code ?? 'UNKNOWN'), message: String(e.message ?? '') }));
    }
    // OAuth2 token endpoints answer {"error": "...", "error_description": "..."}; some registries {"details": "..."}.
    const oauth = parsed as { error?: unknown; error_description?: unknown; details?: unknown };
    if (typeof oauth.error === 'string') return [{ code: oauth.error, message: String(oauth.error_description ?? '') }];
    if (typeof oauth.details === 'string') return [{ code: 'UNKNOWN', message: oauth.details }];
  } catch {
    // not JSON
  }
  return [];
}

export function describeRegistryErrors(status: number, entries: RegistryErrorEntry[]): string {
  if (entries.length === 0) return `HTTP ${status}`;
  return `HTTP ${status} ${entries.map((e) => (e.message ? `${e.code}: ${e.message}` : e.code)).join('; ')}`;
}

function where(context: RegistryErrorContext): string {
  return context.repository === undefined ? `registry ${context.registry}` : `registry ${context.registry}, repository ${context.repository}`;
}

function noKey(context: RegistryErrorContext, keys: string[] = []): string {
  return keys.length === 0
    ? 'no docker config credentials were given'
    : `no docker config key matches ${context.registry} (keys: ${keys.map((k) => JSON.stringify(k)).join(', ')})`;
}

/** The error for a final HTTP response that was not what the action expects. */
export function errorFromResponse(
  status: number,
  bodyText: string,
  context: RegistryErrorContext,
  options: {
    configKeys?: string[];
    retryAfterSeconds?: number | undefined;
    insufficientScope?: boolean;
    /** The request went over plain HTTP and the answer had no headers at all. */
    plainHttp?: boolean;
    bareResponse?: boolean;
  } = {},
): RegistryError {
  const registryErrors = parseErrorBody(bodyText);
  const said = describeRegistryErrors(status, registryErrors);
  const extra = { status, registryErrors };
  const codes = new Set(registryErrors.map((e) => e.code));
  const doing = `${context.action} failed at ${where(context)}`;

  const keyed = context.credentialKey !== null && context.credentialKey !== undefined;
  const account = keyed ? `the account of docker config key ${JSON.stringify(context.credentialKey)}` : 'anonymous access';
  if (status === 403 || codes.has('DENIED') || options.insufficientScope) {
    const right = /push|mount|delete/.test(context.action) ? 'push' : 'pull';
    const target = context.repository ?? context.registry;
    return new RegistryError(
      'E_REGISTRY_DENIED',
      `${doing}: ${account} may not do that (${said}); give it ${right} access to ${target}${keyed ? '' : `, or add an entry for "${context.registry}" to the registry secret`}`,
      context,
      extra,
    );
  }
  // OAuth2 token endpoints refuse an expired or revoked refresh token with 400 invalid_grant (RFC 6749 §5.2).
  if (status === 401 || (status === 400 && (codes.has('invalid_grant') || codes.has('invalid_client')))) {
    const message = keyed
      ? `${doing}: the credentials of docker config key ${JSON.stringify(context.credentialKey)} were refused (${said}); check that entry's username and password (or token)`
      : `${doing}: the registry requires authentication and ${noKey(context, options.configKeys)} (${said}); add an entry for "${context.registry}" to the registry secret`;
    return new RegistryError('E_REGISTRY_UNAUTHORIZED', message, context, extra);
  }
  if (status === 404) {
    return new RegistryError('E_REGISTRY_NOT_FOUND', `${doing}: not found (${said}); check the repository name and tag or digest`, context, extra);
  }
  if (status === 429 || codes.has('TOOMANYREQUESTS')) {
    const wait = options.retryAfterSeconds === undefined ? '' : `; the registry asks to wait ${options.retryAfterSeconds} s`;
    return new RegistryError('E_REGISTRY_RATE_LIMITED', `${doing}: rate limited (${said})${wait}; retry later or authenticate for a higher limit`, context, extra);
  }
  if (status >= 500) {
    return new RegistryError('E_REGISTRY_UNAVAILABLE', `${doing}: the registry failed (${said}) after retries; retry later`, context, extra);
  }
  // Go's TLS listener answers a plain-HTTP request with a bare "HTTP/1.0 400" (no headers) and this
  // sentence as body; a HEAD shows only the former.
  if (status === 400 && (/HTTP request to an HTTPS server/i.test(bodyText) || (options.plainHttp === true && options.bareResponse === true))) {
    return new RegistryError(
      'E_REGISTRY_TLS',
      `${doing}: the registry speaks HTTPS but was called over plain HTTP; set insecure: false for it (with its ca, or tlsVerify: false)`,
      context,
      extra,
    );
  }
  if (status >= 400) {
    return new RegistryError('E_REGISTRY_REJECTED', `${doing}: the registry rejected the request (${said})`, context, extra);
  }
  return new RegistryError('E_REGISTRY_PROTOCOL', `${doing}: unexpected answer ${said}`, context, extra);
}

const TLS_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'EPROTO',
]);
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
]);
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** The first error code found along an error's cause chain. */
export function networkErrorCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (TLS_CODES.has(code) || UNREACHABLE_CODES.has(code) || TIMEOUT_CODES.has(code) || code.startsWith('ERR_SSL_'))) return code;
  }
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Whether a failed request may pass on a retry: refused/reset connections and timeouts, not TLS problems. */
export function isRetryableNetworkError(error: unknown): boolean {
  const code = networkErrorCode(error);
  return code !== undefined && (UNREACHABLE_CODES.has(code) || TIMEOUT_CODES.has(code)) && code !== 'ENOTFOUND';
}

/** The error for a request that got no HTTP answer. */
export function errorFromNetwork(error: unknown, context: RegistryErrorContext, origin: string, attempts: number): RegistryError {
  const code = networkErrorCode(error) ?? 'UNKNOWN';
  const message = error instanceof Error ? error.message : String(error);
  // OpenSSL messages carry a long prefix ("C03C...:error:0A0000C6:SSL routines:func:reason:file:line"); keep the reason.
  const reason = /SSL routines:[^:]*:([^:]+)/.exec(message)?.[1] ?? message.trim();
  const tries = attempts > 1 ? ` (${attempts} attempts)` : '';
  const details = { origin, networkCode: code, attempts };
  if (TLS_CODES.has(code) || code.startsWith('ERR_SSL_')) {
    const plain = code === 'EPROTO' || /wrong version number|packet length too long/i.test(reason);
    const hint = plain
      ? 'the server does not speak TLS there; if it serves plain HTTP, set insecure: true for this registry'
      : 'give the CA that signed its certificate (ca), or turn verification off for this registry (tlsVerify: false)';
    return new RegistryError('E_REGISTRY_TLS', `${context.action} failed at ${where(context)}: TLS to ${origin} failed: ${reason} [${code}]; ${hint}`, context, {
      cause: error,
      details,
    });
  }
  if (TIMEOUT_CODES.has(code)) {
    return new RegistryError('E_REGISTRY_TIMEOUT', `${context.action} failed at ${where(context)}: ${origin} did not answer in time${tries}: ${reason}; retry later or raise timeoutMs`, context, {
      cause: error,
      details,
    });
  }
  return new RegistryError(
    'E_REGISTRY_UNREACHABLE',
    `${context.action} failed at ${where(context)}: cannot reach ${origin}${tries}: ${reason} [${code}]; check the registry address and that it is running`,
    context,
    { cause: error, details },
  );
}
