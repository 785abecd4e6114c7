// How bytes reach one registry: which origin (https or plain http), an undici Agent with that
// registry's TLS settings, timeouts on every request, retries with backoff, and redirects that never
// carry the registry's Authorization to another host but keep its TLS settings.
import { sleep } from '../sleep.ts';
import { rootCertificates } from 'node:tls';
import { isIP } from 'node:net';
import { Agent, request, type Dispatcher } from 'undici';
import { DOCKER_HUB, normaliseRegistryHost } from '../image/reference.ts';
import { registryHostFromKey, type RegistryCredential } from './credentials.ts';
import { errorFromNetwork, isRetryableNetworkError, networkErrorCode, RegistryError, type RegistryErrorContext } from './errors.ts';

/**
 * Per-registry transport settings; the three are independent. `tlsVerify` and `ca` also cover the
 * registry's token realm and the hosts it redirects to (blob storage), which get no credentials.
 */
export interface RegistryTransport {
  /** false: accept any certificate (the registry still speaks TLS). Default true. */
  tlsVerify?: boolean;
  /** PEM of extra CA certificates that may sign the registry's (or its storage's) certificate, added to the system roots. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** true: plain HTTP. Unset: see registryEndpoint(). */
  insecure?: boolean;
}

/** Transport settings by registry host (Docker Hub aliases and case folded when looked up). */
export type RegistrySettings = Record<string, RegistryTransport>;

const DOCKER_HUB_API = 'registry-1.docker.io';

export function transportFor(settings: RegistrySettings | undefined, host: string): RegistryTransport {
  if (!settings) return {};
  const wanted = normaliseRegistryHost(host);
  for (const [key, value] of Object.entries(settings)) {
    if (registryHostFromKey(key).host === wanted) return value;
  }
  return {};
}

/** True for localhost, 127.0.0.0/8 and ::1, with or without a port. */
export function isLoopbackHost(host: string): boolean {
  let name = host.toLowerCase();
  if (name.startsWith('[')) name = name.slice(1, name.indexOf(']') === -1 ? undefined : name.indexOf(']'));
  else if (name.includes(':') && isIP(name) !== 6) name = name.slice(0, name.lastIndexOf(':'));
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  return name === '::1';
}

export interface RegistryEndpoint {
  /** e.g. https://registry-1.docker.io or http://127.0.0.1:5000 */
  origin: string;
  plainHttp: boolean;
  /** Why this scheme was chosen, for the log. */
  reason: string;
}

/**
 * Where the registry's API lives. Plain HTTP is used when the transport says `insecure: true`; when it
 * says nothing, these decide, in order:
 *  - a CA or tlsVerify setting means the registry speaks TLS;
 *  - a matching credential key written as `http://host...` (the minikube registry form) means plain HTTP,
 *    one written as `https://...` means TLS;
 *  - a loopback host (localhost, 127.0.0.0/8, ::1) means plain HTTP, as Docker treats those as insecure
 *    registries and a port-forwarded or local `registry:2` has no certificate;
 *  - everything else is HTTPS.
 * Docker Hub's API endpoint is registry-1.docker.io, always over HTTPS.
 */
export function registryEndpoint(host: string, transport: RegistryTransport = {}, credential?: RegistryCredential): RegistryEndpoint {
  const normalised = normaliseRegistryHost(host);
  if (normalised === DOCKER_HUB) return { origin: `https://${DOCKER_HUB_API}`, plainHttp: false, reason: 'Docker Hub API endpoint' };
  const pick = (plainHttp: boolean, reason: string): RegistryEndpoint => ({ origin: `${plainHttp ? 'http' : 'https'}://${normalised}`, plainHttp, reason });
  if (transport.insecure !== undefined) return pick(transport.insecure, `insecure: ${transport.insecure} in the registry's transport settings`);
  if (transport.ca !== undefined || transport.tlsVerify !== undefined) return pick(false, 'TLS settings given for the registry');
  if (credential?.keyScheme === 'http') return pick(true, `docker config key ${JSON.stringify(credential.key)} is written with http://`);
  if (credential?.keyScheme === 'https') return pick(false, `docker config key ${JSON.stringify(credential.key)} is written with https://`);
  if (isLoopbackHost(normalised)) return pick(true, 'loopback registry without TLS settings');
  return pick(false, 'default');
}

export interface TransportOptions {
  transport?: RegistryTransport | undefined;
  /** Connect, response-headers and body-idle timeout of every request. Default 30 s. */
  timeoutMs?: number | undefined;
  /** Retries after the first attempt for retryable failures. Default 3. */
  retries?: number | undefined;
  /** First backoff delay; doubles per retry, with jitter. Default 250 ms. */
  retryDelayMs?: number | undefined;
  /** Longest wait for one retry, including a Retry-After the registry asks for. Default 30 s. */
  maxRetryDelayMs?: number | undefined;
  signal?: AbortSignal | undefined;
  userAgent?: string | undefined;
  /** Reports retries and redirects (paths only: query strings may hold signed URLs). */
  log?: ((event: Record<string, unknown>) => void) | undefined;
}

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: URL;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  /** Safe to send again after a 5xx/429 or a reset connection. */
  idempotent: boolean;
  context: RegistryErrorContext;
}

export interface HttpResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  /** The URL that answered, after redirects. */
  url: URL;
}

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

export class HttpTransport {
  readonly timeoutMs: number;
  readonly retries: number;
  readonly retryDelayMs: number;
  readonly maxRetryDelayMs: number;
  readonly #agent: Agent;
  readonly #options: TransportOptions;

  constructor(options: TransportOptions = {}) {
    this.#options = options;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.retries = options.retries ?? 3;
    this.retryDelayMs = options.retryDelayMs ?? 250;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 30_000;
    const transport = options.transport ?? {};
    const extraCa = transport.ca === undefined ? [] : Array.isArray(transport.ca) ? transport.ca : [transport.ca];
    // Redirect targets (blob storage, CDNs) use this agent too: a private registry's storage is usually
    // signed by the same private CA, and with verification off a registry could already send the client
    // anywhere, while blob content is checked against its digest and credentials never follow.
    this.#agent = sharedAgent(
      extraCa.map((c) => c.toString()),
      transport.tlsVerify === false,
      this.timeoutMs,
    );
  }

  /**
   * Sends a request, following redirects and retrying what can be retried. Returns the final response,
   * whose body the caller must consume or dump; a 5xx/429 is returned once retries are used up.
   */
  async send(req: HttpRequest): Promise<HttpResponse> {
    let attempt = 0;
    for (;;) {
      let response: HttpResponse;
      // The origin of the request that failed, so a TLS error on a redirect names the storage host.
      const reached = { origin: req.url.origin };
      try {
        response = await this.#sendFollowingRedirects(req, reached);
      } catch (error) {
        if (error instanceof RegistryError || this.#options.signal?.aborted) throw error;
        const code = networkErrorCode(error);
        // Nothing reached the server when the connection was refused, so even a POST can go again.
        const unsent = ['ECONNREFUSED', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code ?? '');
        if (attempt < this.retries && isRetryableNetworkError(error) && (req.idempotent || unsent)) {
          attempt++;
          await this.#backoff(req, attempt, undefined, code ?? 'network error');
          continue;
        }
        throw errorFromNetwork(error, req.context, reached.origin, attempt + 1);
      }
      if (req.idempotent && attempt < this.retries && RETRY_STATUS.has(response.statusCode)) {
        const retryAfter = retryAfterMs(response.headers['retry-after']);
        if (retryAfter === undefined || retryAfter <= this.maxRetryDelayMs) {
          await response.body.dump().catch(() => {});
          attempt++;
          await this.#backoff(req, attempt, retryAfter, `HTTP ${response.statusCode}`);
          continue;
        }
      }
      return response;
    }
  }

  async #sendFollowingRedirects(req: HttpRequest, reached: { origin: string }): Promise<HttpResponse> {
    let url = req.url;
    let headers = { ...req.headers };
    for (let hops = 0; ; hops++) {
      reached.origin = url.origin;
      const { statusCode, headers: responseHeaders, body } = await request(url, {
        method: req.method,
        headers: { 'user-agent': this.#options.userAgent ?? 'function-image-builder', ...headers },
        body: req.body ?? (req.method === 'PUT' || req.method === 'POST' || req.method === 'PATCH' ? '' : undefined),
        dispatcher: this.#agent,
        signal: this.#options.signal,
        // undici closes the connection after every HEAD unless told otherwise, in case a broken server
        // sends a body anyway; registries do not, and the existence check is a HEAD on every reconcile.
        ...(req.method === 'HEAD' ? { reset: false } : {}),
      });
      const location = responseHeaders.location;
      const replayable = req.method === 'GET' || req.method === 'HEAD' || statusCode === 307 || statusCode === 308;
      if (!REDIRECT_STATUS.has(statusCode) || typeof location !== 'string' || !replayable) {
        return { statusCode, headers: responseHeaders, body, url };
      }
      await body.dump().catch(() => {});
      if (hops >= MAX_REDIRECTS) {
        throw new RegistryError('E_REGISTRY_PROTOCOL', `${req.context.action} failed at registry ${req.context.registry}: more than ${MAX_REDIRECTS} redirects`, req.context, {
          status: statusCode,
        });
      }
      const next = new URL(location, url);
      if (next.origin !== url.origin) {
        // Credentials are for the registry only; a signed storage URL carries its own authorisation.
        const { authorization: _dropped, ...rest } = headers;
        headers = rest;
      }
      this.#options.log?.({ event: 'redirect', level: 'debug', status: statusCode, from: url.pathname, to: next.origin + next.pathname });
      url = next;
    }
  }

  async #backoff(req: HttpRequest, attempt: number, retryAfter: number | undefined, reason: string): Promise<void> {
    const exponential = Math.min(this.maxRetryDelayMs, this.retryDelayMs * 2 ** (attempt - 1));
    const delayMs = Math.round(retryAfter ?? exponential * (0.5 + Math.random() / 2));
    this.#options.log?.({ event: 'retry', level: 'warn', method: req.method, path: req.url.pathname, attempt, delayMs, reason });
    await sleep(delayMs, this.#options.signal);
  }
}

// Connection pools by TLS settings and timeouts. Credentials travel per request (Authorization), never
// per connection, so clients of different credentials can share a pool; TLS settings cannot.
const agents = new Map<string, Agent>();

function sharedAgent(extraCa: string[], skipVerify: boolean, timeoutMs: number): Agent {
  // Keyed by what varies between registries, not by the merged CA list: a client is made on every
  // build call, and the system roots (some 200 KB of PEM) need not be copied to find its pool.
  const key = JSON.stringify([extraCa, skipVerify, timeoutMs]);
  let agent = agents.get(key);
  if (!agent) {
    // Node replaces the system roots when `ca` is set; keep them so a token realm or mirror with a
    // public certificate still verifies next to a registry signed by a private CA.
    const connect = {
      ...(extraCa.length > 0 ? { ca: [...rootCertificates, ...extraCa] } : {}),
      ...(skipVerify ? { rejectUnauthorized: false } : {}),
    };
    agent = new Agent({
      connect: { ...connect, timeout: timeoutMs },
      connectTimeout: timeoutMs,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      // HTTP/1.1 everywhere: Docker's own registry client negotiates the same on most registries, and
      // one protocol keeps redirects, retries and body handling identical for every registry.
      allowH2: false,
      keepAliveTimeout: 10_000,
    });
    agents.set(key, agent);
  }
  return agent;
}

/** Closes every pooled registry connection (a process shutting down, a test ending); pools reopen on use. */
export async function closeRegistryConnections(): Promise<void> {
  const open = [...agents.values()];
  agents.clear();
  await Promise.all(open.map((agent) => agent.close()));
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date. */
export function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** Reads a response body up to `limit` bytes; more is an error (the rest is discarded). */
export async function readBody(response: HttpResponse, limit: number, context: RegistryErrorContext): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body) {
      size += (chunk as Buffer).length;
      if (size > limit) {
        response.body.destroy();
        throw new RegistryError('E_REGISTRY_PROTOCOL', `${context.action} failed at registry ${context.registry}: response larger than ${limit} bytes`, context, {
          status: response.statusCode,
        });
      }
      chunks.push(chunk as Buffer);
    }
  } catch (error) {
    // A body that stalls past timeoutMs or breaks off arrives after send() returned, so it gets the
    // same stable error (E_REGISTRY_TIMEOUT / E_REGISTRY_UNREACHABLE) as a request that got no answer.
    if (error instanceof RegistryError || !isRetryableNetworkError(error)) throw error;
    throw errorFromNetwork(error, context, response.url.origin, 1);
  }
  return Buffer.concat(chunks);
}

/** Reads a (possibly error) body as text, keeping at most `limit` bytes and discarding the rest. */
export async function readText(response: HttpResponse, limit = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body) {
      if (size < limit) chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
  } catch {
    // a body that breaks off is still an answer; use what arrived
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}

export function header(response: HttpResponse, name: string): string | undefined {
  const value = response.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}
