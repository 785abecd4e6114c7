// The registry HTTP API (distribution spec v2 / OCI distribution) for one registry: manifests, blobs,
// uploads, cross-repository mounts and tags. Authentication is learned from the first 401 (or an
// explicit ping) and answered by the Authenticator; bytes move through the HttpTransport.
import { createHash } from 'node:crypto';
import { BuilderError } from '../errors.ts';
import { ImageReferenceError, isDigest, isTag, normaliseRegistryHost, normaliseRepository } from '../image/reference.ts';
import { Authenticator, mergeScopes, parseWwwAuthenticate, SecretSet } from './auth.ts';
import { RegistryCredential, resolveCredentials, type DockerConfig } from './credentials.ts';
import { describeRegistryErrors, errorFromNetwork, errorFromResponse, isRetryableNetworkError, parseErrorBody, RegistryError, type RegistryErrorContext } from './errors.ts';
import {
  formatPlatform,
  isIndexMediaType,
  listPlatforms,
  MANIFEST_ACCEPT,
  parsePlatform,
  selectPlatform,
  sha256Digest,
  type ManifestIndex,
  type Platform,
} from './manifest.ts';
import {
  header,
  HttpTransport,
  readBody,
  readText,
  registryEndpoint,
  retryAfterMs,
  type HttpRequest,
  type HttpResponse,
  type RegistryEndpoint,
  type RegistryTransport,
  type TransportOptions,
} from './transport.ts';

/** A structured log line; never holds a password or token. */
export interface RegistryLogEvent {
  event: string;
  level: 'debug' | 'info' | 'warn';
  registry: string;
  [field: string]: unknown;
}

export interface RegistryClientOptions extends Omit<TransportOptions, 'transport' | 'log'> {
  /** Registry host[:port] as in image references; Docker Hub aliases are folded. */
  registry: string;
  /** A parsed docker config (the matching entry is used) or one credential. */
  credentials?: DockerConfig | RegistryCredential | undefined;
  transport?: RegistryTransport | undefined;
  log?: ((event: RegistryLogEvent) => void) | undefined;
}

export interface ManifestDescriptor {
  digest: string;
  mediaType: string;
  size: number;
}

export interface Manifest extends ManifestDescriptor {
  /** The exact bytes the registry holds (their sha256 is the digest). */
  bytes: Buffer;
  json: Record<string, unknown>;
}

export interface PushBlobOptions {
  /** Expected digest; required to skip or mount before an iterable source is read. */
  digest?: string;
  /** Upload in PATCH chunks of this many bytes instead of one PUT. Default for iterables: 8 MiB. */
  chunkSize?: number;
  /** Try a cross-repository mount from this repository first. */
  mountFrom?: string;
  /** HEAD the blob first and skip the upload when it is there. Default true. */
  skipExisting?: boolean;
  /** An upload session opened beforehand (startUpload), used instead of opening one. */
  uploadUrl?: string;
}

export interface PushBlobResult {
  digest: string;
  size: number;
  outcome: 'existed' | 'mounted' | 'uploaded';
}

export type MountResult = { mounted: true } | { mounted: false; uploadUrl: string };

const MANIFEST_MAX_BYTES = 4 * 1024 * 1024;
const DEFAULT_CHUNK = 8 * 1024 * 1024;

interface CallOptions {
  method: HttpRequest['method'];
  /** A path on the registry (/v2/...) or an absolute upload URL it gave us. */
  target: string | URL;
  scopes: string[];
  context: RegistryErrorContext;
  expect: number[];
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  idempotent?: boolean;
  /** Return a 404 instead of throwing (the caller dumps it). */
  notFoundOk?: boolean;
}

export class RegistryClient {
  /** Normalised registry host, as in image references. */
  readonly registry: string;
  readonly endpoint: RegistryEndpoint;
  /** The docker config key whose credentials are used, or null. */
  readonly credentialKey: string | null;
  readonly #credential: RegistryCredential | undefined;
  readonly #configKeys: string[];
  readonly #transport: HttpTransport;
  readonly #auth: Authenticator;
  readonly #secrets = new SecretSet();
  readonly #log: ((event: RegistryLogEvent) => void) | undefined;

  constructor(options: RegistryClientOptions) {
    this.registry = normaliseRegistryHost(options.registry);
    this.#log = options.log;
    const given = options.credentials;
    let credential: RegistryCredential | undefined;
    if (given instanceof RegistryCredential) {
      credential = given;
      this.#configKeys = [given.key];
    } else {
      credential = resolveCredentials(given, this.registry);
      this.#configKeys = given?.entries.map((e) => e.key) ?? [];
      for (const warning of given?.warnings ?? []) this.#emit({ event: 'config-warning', level: 'warn', message: warning });
    }
    this.#credential = credential;
    this.credentialKey = credential?.key ?? null;
    this.endpoint = registryEndpoint(this.registry, options.transport, credential);
    this.#transport = new HttpTransport({ ...options, transport: options.transport, log: (event) => this.#emit(event) });
    this.#auth = new Authenticator({
      registry: this.registry,
      credential,
      configKeys: this.#configKeys,
      transport: this.#transport,
      secrets: this.#secrets,
      log: (event) => this.#emit(event),
    });
    this.#emit({
      event: 'credentials',
      level: 'info',
      key: this.credentialKey,
      type: credential?.type ?? 'anonymous',
      ...(credential === undefined && this.#configKeys.length > 0 ? { note: 'no docker config key matches this registry' } : {}),
    });
    this.#emit({ event: 'endpoint', level: 'debug', origin: this.endpoint.origin, plainHttp: this.endpoint.plainHttp, reason: this.endpoint.reason });
  }

  #emit(event: Omit<RegistryLogEvent, 'registry'> | Record<string, unknown>): void {
    if (!this.#log) return;
    this.#log(this.#secrets.redactValue({ registry: this.registry, ...event }) as RegistryLogEvent);
  }

  /** Runs a public operation so that whatever it throws is scrubbed of every secret this client knows. */
  async #guard<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw this.#secrets.redactError(error);
    }
  }

  #context(action: string, repository?: string): RegistryErrorContext {
    return { registry: this.registry, repository, action, credentialKey: this.credentialKey };
  }

  #repository(repository: string): string {
    return normaliseRepository(this.registry, repository);
  }

  /** GET /v2/: whether the registry answers, and which authentication it asks for. */
  ping(): Promise<{ authScheme: string; apiVersion: string | undefined }> {
    return this.#guard(async () => {
      const context = this.#context('ping');
      const response = await this.#transport.send({ method: 'GET', url: new URL('/v2/', this.endpoint.origin), idempotent: true, context });
      const apiVersion = header(response, 'docker-distribution-api-version');
      if (response.statusCode === 200) {
        await response.body.dump();
        return { authScheme: 'none', apiVersion };
      }
      if (response.statusCode === 401) {
        await response.body.dump();
        this.#auth.learn(parseWwwAuthenticate(response.headers['www-authenticate']));
        return { authScheme: this.#auth.challenge?.scheme ?? 'unknown', apiVersion };
      }
      const text = await readText(response);
      if (response.statusCode === 404) {
        throw new RegistryError('E_REGISTRY_PROTOCOL', `${this.endpoint.origin}/v2/ is not a registry API (HTTP 404); check the registry host`, context, { status: 404 });
      }
      throw errorFromResponse(response.statusCode, text, context, { configKeys: this.#configKeys });
    });
  }

  /**
   * Sends one API request with authentication. A 401 is answered once more when it teaches something
   * new (first challenge, wider scope, a cached token the registry no longer takes); after that it is
   * an error: E_REGISTRY_DENIED for a token lacking the scope, E_REGISTRY_UNAUTHORIZED otherwise.
   */
  async #call(options: CallOptions): Promise<HttpResponse> {
    const url = typeof options.target === 'string' ? new URL(options.target, this.endpoint.origin) : options.target;
    const sameOrigin = url.origin === this.endpoint.origin;
    const { context } = options;
    let scopes = mergeScopes(options.scopes);
    for (let round = 0; ; round++) {
      const auth = sameOrigin ? await this.#auth.authorization(scopes, context) : { header: undefined, cached: false, scheme: 'none' as const };
      const response = await this.#transport.send({
        method: options.method,
        url,
        headers: { ...options.headers, ...(auth.header === undefined ? {} : { authorization: auth.header }) },
        ...(options.body === undefined ? {} : { body: options.body }),
        idempotent: options.idempotent ?? (options.method === 'GET' || options.method === 'HEAD' || options.method === 'DELETE'),
        context,
      });
      const status = response.statusCode;
      if (options.expect.includes(status) || (status === 404 && options.notFoundOk)) return response;
      if (status === 401 && sameOrigin) {
        const challenges = parseWwwAuthenticate(response.headers['www-authenticate']);
        const bearer = challenges.find((c) => c.scheme === 'bearer');
        // A registry token is sent as it is, so there is nothing to learn or widen; its challenge still
        // tells a token lacking the scope (DENIED) from one not taken at all (UNAUTHORIZED).
        if (this.#credential?.registryToken === undefined) {
          const learned = this.#auth.learn(challenges);
          const wider = mergeScopes(scopes, bearer?.params.scope ? [bearer.params.scope] : []);
          const widened = wider.join(' ') !== scopes.join(' ');
          if (round < 2 && (learned || widened || auth.cached)) {
            if (auth.cached) this.#auth.forget(scopes);
            scopes = wider;
            await response.body.dump();
            continue;
          }
        }
        const text = await readText(response);
        const insufficientScope = bearer?.params.error === 'insufficient_scope' && this.#credential !== undefined;
        throw errorFromResponse(401, text, context, { configKeys: this.#configKeys, insufficientScope });
      }
      const text = await readText(response);
      const retryAfter = retryAfterMs(response.headers['retry-after']);
      throw errorFromResponse(status, text, context, {
        configKeys: this.#configKeys,
        plainHttp: url.protocol === 'http:',
        bareResponse: Object.keys(response.headers).length === 0,
        retryAfterSeconds: retryAfter === undefined ? undefined : Math.ceil(retryAfter / 1000),
      });
    }
  }

  #checkReference(reference: string, context: RegistryErrorContext): void {
    if (!isTag(reference) && !isDigest(reference)) {
      throw new ImageReferenceError(reference, `"${reference}" is neither a tag nor a sha256/sha384/sha512 digest`, { action: context.action });
    }
  }

  /** HEAD a manifest by tag or digest: its descriptor, or undefined when the registry does not have it. */
  manifestExists(repository: string, tagOrDigest: string): Promise<ManifestDescriptor | undefined> {
    return this.#guard(async () => {
      const repo = this.#repository(repository);
      const context = this.#context('check manifest', repo);
      this.#checkReference(tagOrDigest, context);
      const response = await this.#call({
        method: 'HEAD',
        target: `/v2/${repo}/manifests/${tagOrDigest}`,
        scopes: [`repository:${repo}:pull`],
        headers: { accept: MANIFEST_ACCEPT },
        context,
        expect: [200],
        notFoundOk: true,
      });
      await response.body.dump();
      if (response.statusCode === 404) return undefined;
      const digest = header(response, 'docker-content-digest') ?? (isDigest(tagOrDigest) ? tagOrDigest : undefined);
      const mediaType = header(response, 'content-type')?.split(';')[0]?.trim();
      const size = Number(header(response, 'content-length') ?? NaN);
      if (digest === undefined || mediaType === undefined || !Number.isFinite(size)) {
        // Some registries leave these out of HEAD answers; the body has them all.
        const manifest = await this.#getManifest(repo, tagOrDigest, context);
        return manifest && { digest: manifest.digest, mediaType: manifest.mediaType, size: manifest.size };
      }
      return { digest, mediaType, size };
    });
  }

  /** GET a manifest (any of the four schema-2 media types), verified against its digest. */
  getManifest(repository: string, tagOrDigest: string): Promise<Manifest> {
    return this.#guard(async () => {
      const repo = this.#repository(repository);
      const context = this.#context('pull manifest', repo);
      this.#checkReference(tagOrDigest, context);
      const manifest = await this.#getManifest(repo, tagOrDigest, context, false);
      return manifest as Manifest;
    });
  }

  async #getManifest(repo: string, tagOrDigest: string, context: RegistryErrorContext, notFoundOk = true): Promise<Manifest | undefined> {
    const response = await this.#call({
      method: 'GET',
      target: `/v2/${repo}/manifests/${tagOrDigest}`,
      scopes: [`repository:${repo}:pull`],
      headers: { accept: MANIFEST_ACCEPT },
      context,
      expect: [200],
      notFoundOk,
    });
    if (response.statusCode === 404) {
      await response.body.dump();
      return undefined;
    }
    const bytes = await readBody(response, MANIFEST_MAX_BYTES, context);
    const claimed = isDigest(tagOrDigest) ? tagOrDigest : header(response, 'docker-content-digest');
    const computed = digestOf(bytes, claimed);
    if (claimed !== undefined && claimed !== computed) {
      throw new RegistryError('E_REGISTRY_DIGEST_MISMATCH', `pull manifest ${repo}:${tagOrDigest} from registry ${this.registry}: content hashes to ${computed}, not ${claimed}`, context);
    }
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new RegistryError('E_REGISTRY_PROTOCOL', `pull manifest ${repo}:${tagOrDigest} from registry ${this.registry}: the manifest is not JSON`, context);
    }
    const mediaType = (typeof json.mediaType === 'string' ? json.mediaType : undefined) ?? header(response, 'content-type')?.split(';')[0]?.trim() ?? '';
    return { digest: computed, mediaType, size: bytes.length, bytes, json };
  }

  /**
   * The digest of the manifest a daemon on `platform` would run for repository:tag: the tag's own
   * manifest, or the platform's entry when the tag names an index / manifest list.
   */
  resolveDigest(repository: string, tag: string, platform: string | Platform = 'linux/amd64'): Promise<string> {
    return this.#guard(async () => {
      const repo = this.#repository(repository);
      const context = this.#context('resolve digest', repo);
      const wanted = parsePlatform(platform);
      const found = await this.manifestExists(repo, tag);
      if (found === undefined) {
        throw new RegistryError('E_REGISTRY_NOT_FOUND', `resolve digest failed at registry ${this.registry}: ${repo}:${tag} does not exist; check the image name and tag`, context, {
          status: 404,
        });
      }
      if (!isIndexMediaType(found.mediaType)) return found.digest;
      const index = await this.#getManifest(repo, found.digest, context, false);
      const chosen = selectPlatform(index?.json as unknown as ManifestIndex, wanted);
      if (chosen === undefined) {
        const offered = listPlatforms(index?.json as unknown as ManifestIndex);
        throw new RegistryError(
          'E_REGISTRY_PLATFORM_NOT_FOUND',
          `resolve digest failed at registry ${this.registry}: ${repo}:${tag} has no image for ${formatPlatform(wanted)} (it has: ${offered.join(', ') || 'none'}); use an image built for that platform`,
          context,
          { details: { platform: formatPlatform(wanted), available: offered } },
        );
      }
      return chosen.digest;
    });
  }

  /** PUT a manifest under a tag or digest; returns the digest of the exact bytes sent. */
  putManifest(repository: string, tagOrDigest: string, manifest: string | Uint8Array | object, mediaType?: string): Promise<{ digest: string; location: string | undefined }> {
    return this.#guard(async () => {
      const repo = this.#repository(repository);
      const context = this.#context('push manifest', repo);
      this.#checkReference(tagOrDigest, context);
      const bytes = typeof manifest === 'string' ? Buffer.from(manifest) : manifest instanceof Uint8Array ? Buffer.from(manifest) : Buffer.from(JSON.stringify(manifest));
      let type = mediaType;
      if (type === undefined) {
        try {
          const parsed = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown };
          if (typeof parsed.mediaType === 'string') type = parsed.mediaType;
        } catch {
          // reported below
        }
      }
      if (type === undefined) {
        throw new BuilderError('E_MANIFEST_MEDIA_TYPE', 'user', `push manifest ${repo}:${tagOrDigest}: give its media type (the manifest has no "mediaType" field)`);
      }
      const digest = sha256Digest(bytes);
      if (isDigest(tagOrDigest) && tagOrDigest !== digest) {
        throw new RegistryError('E_REGISTRY_DIGEST_MISMATCH', `push manifest ${repo}@${tagOrDigest}: the manifest hashes to ${digest}`, context);
      }
      const response = await this.#call({
        method: 'PUT',
        target: `/v2/${repo}/manifests/${tagOrDigest}`,
        scopes: [`repository:${repo}:pull,push`],
        headers: { 'content-type': type },
        body: bytes,
        idempotent: true,
        context,
        expect: [201, 200, 202],
      });
      await response.body.dump();
      const returned = header(response, 'docker-content-digest');
      if (returned !== undefined && returned !== digest) {
        throw new RegistryError('E_REGISTRY_DIGEST_MISMATCH', `push manifest ${repo}:${tagOrDigest}: registry ${this.registry} stored ${returned}, we sent ${digest}`, context);
      }
      return { digest, location: header(response, 'location') };
    });
  }

  /**
   * DELETE a manifest by digest (which untags every tag pointing at it). Returns false when the
   * registry did not have it. A registry that does not allow deletes answers 405 (distribution:
   * UNSUPPORTED unless storage.delete.enabled): E_REGISTRY_DELETE_UNSUPPORTED.
   */
  deleteManifest(repository: string, digest: string): Promise<boolean> {
    return this.#guard(async () => {
      const repo = this.#repository(repository);
      const context = this.#context('delete manifest', repo);
      this.#checkDigest(digest, context);
      const response = await this.#call({
        method: 'DELETE',
        target: `/v2/${repo}/manifests/${digest}`,
        scopes: [`repository:${repo}:delete`],
        context,
        expect: [202, 200, 204, 405],
        notFoundOk: true,
      });
      if (response.statusCode === 405) {
        const said = describeRegistryErrors(405, parseErrorBody(await readText(response)));
        throw new RegistryError(
          'E_REGISTRY_DELETE_UNSUPPORTED',
          `delete manifest ${repo}@${digest} at registry ${this.registry}: the registry does not allow deletes (${said}); enable them (distribution: storage.delete.enabled, REGISTRY_STORAGE_DELETE_ENABLED=true) or prune with the registry's own retention tools`,
          context,
          { status: 405 },
        );
      }
      await response.body.dump();
      return response.statusCode !== 404;
    });
  }

  /** HEAD a blob: its size, or undefined when the repository does not have it. */
  blobExists(repository: string, digest: string): Promise<{ size: number } | undefined> {
    return this.#guard(async () => {
      const repo = this.#repository(repository);
      const context = this.#context('check blob', repo);
      this.#checkDigest(digest, context);
      const response = await this.#call({ method: 'HEAD', target: `/v2/${repo}/blobs/${digest}`, scopes: [`repository:${repo}:pull`], context, expect: [200], notFoundOk: true });
      await response.body.dump();
      if (response.statusCode === 404) return undefined;
      return { size: Number(header(response, 'content-length') ?? 0) };
    });
  }

  /** GET a blob into memory (following redirects to storage), verified against its digest. */
  getBlob(repository: string, digest: string, options: { maxBytes?: number } = {}): Promise<Buffer> {
    return this.#guard(async () => {
      const repo = this.#repository(repository);
      const context = this.#context('pull blob', repo);
      this.#checkDigest(digest, context);
      const response = await this.#call({ method: 'GET', target: `/v2/${repo}/blobs/${digest}`, scopes: [`repository:${repo}:pull`], context, expect: [200] });
      const bytes = await readBody(response, options.maxBytes ?? 512 * 1024 * 1024, context);
      const computed = digestOf(bytes, digest);
      if (computed !== digest) {
        throw new RegistryError('E_REGISTRY_DIGEST_MISMATCH', `pull blob ${repo}@${digest} from registry ${this.registry}: content hashes to ${computed}`, context);
      }
      return bytes;
    });
  }

  /**
   * GET a blob as a stream, for copying it to another registry without holding it in memory or on
   * disk. The bytes are hashed as they pass: a body that does not match `digest` ends the stream with
   * E_REGISTRY_DIGEST_MISMATCH, and one that breaks off with E_REGISTRY_UNREACHABLE / E_REGISTRY_TIMEOUT.
   */
  openBlob(repository: string, digest: string): Promise<{ size: number | undefined; stream: AsyncIterable<Uint8Array> }> {
    return this.#guard(async () => {
      const repo = this.#repository(repository);
      const context = this.#context('pull blob', repo);
      this.#checkDigest(digest, context);
      const response = await this.#call({ method: 'GET', target: `/v2/${repo}/blobs/${digest}`, scopes: [`repository:${repo}:pull`], context, expect: [200] });
      const length = Number(header(response, 'content-length') ?? NaN);
      const registry = this.registry;
      const secrets = this.#secrets;
      async function* verified(): AsyncGenerator<Uint8Array> {
        const hash = createHash(algorithmOf(digest));
        try {
          for await (const chunk of response.body) {
            hash.update(chunk as Buffer);
            yield chunk as Buffer;
          }
        } catch (error) {
          if (error instanceof RegistryError || !isRetryableNetworkError(error)) throw secrets.redactError(error);
          throw errorFromNetwork(error, context, response.url.origin, 1);
        } finally {
          // A consumer that stops early (its own upload failed) must not leave the connection open.
          if (!response.body.readableEnded) response.body.destroy();
        }
        const computed = `${algorithmOf(digest)}:${hash.digest('hex')}`;
        if (computed !== digest) {
          throw new RegistryError('E_REGISTRY_DIGEST_MISMATCH', `pull blob ${repo}@${digest} from registry ${registry}: content hashes to ${computed}`, context);
        }
      }
      return { size: Number.isFinite(length) ? length : undefined, stream: verified() };
    });
  }

  #checkDigest(digest: string, context: RegistryErrorContext): void {
    if (!isDigest(digest)) throw new ImageReferenceError(digest, 'a blob digest must be sha256:<64 hex> (or sha384/sha512)', { action: context.action });
  }

  /**
   * Cross-repository mount. 201: the blob is now in `repository`. 202: the registry could not mount it
   * (not in `from`, or no pull right there) and opened an upload instead, whose URL is returned.
   */
  mountBlob(repository: string, digest: string, fromRepository: string): Promise<MountResult> {
    return this.#guard(async () => {
      const repo = this.#repository(repository);
      const from = this.#repository(fromRepository);
      const context = this.#context('mount blob', repo);
      this.#checkDigest(digest, context);
      const response = await this.#call({
        method: 'POST',
        target: `/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`,
        scopes: [`repository:${repo}:pull,push`, `repository:${from}:pull`],
        context,
        expect: [201, 202],
        idempotent: true,
      });
      await response.body.dump();
      if (response.statusCode === 201) return { mounted: true };
      return { mounted: false, uploadUrl: this.#location(response, context).toString() };
    });
  }

  /** Opens an upload session and returns its URL. */
  startUpload(repository: string): Promise<string> {
    return this.#guard(async () => {
      const repo = this.#repository(repository);
      const context = this.#context('push blob', repo);
      return (await this.#startUpload(repo, context)).toString();
    });
  }

  /** Ends an upload session that will not be used (DELETE), so the registry can drop it now. */
  cancelUpload(uploadUrl: string): Promise<void> {
    return this.#guard(async () => {
      const url = new URL(uploadUrl);
      const repo = /^\/v2\/(.+)\/blobs\/uploads\//.exec(url.pathname)?.[1];
      const context = this.#context('cancel upload', repo);
      const response = await this.#call({ method: 'DELETE', target: url, scopes: repo ? [`repository:${repo}:pull,push`] : [], context, expect: [204, 200, 202], notFoundOk: true });
      await response.body.dump();
    });
  }

  async #startUpload(repo: string, context: RegistryErrorContext): Promise<URL> {
    // Opening a session twice only leaves an unused one behind, so a retry is harmless.
    const response = await this.#call({ method: 'POST', target: `/v2/${repo}/blobs/uploads/`, scopes: [`repository:${repo}:pull,push`], context, expect: [202], idempotent: true });
    await response.body.dump();
    return this.#location(response, context);
  }

  /** The upload URL from a Location header, which may be absolute or relative to the request. */
  #location(response: HttpResponse, context: RegistryErrorContext): URL {
    const location = header(response, 'location');
    if (!location) {
      throw new RegistryError('E_REGISTRY_PROTOCOL', `${context.action} at registry ${this.registry}: HTTP ${response.statusCode} without a Location header`, context, {
        status: response.statusCode,
      });
    }
    return new URL(location, response.url);
  }

  /**
   * Uploads a blob: skipped when the repository has it, mounted when `mountFrom` has it, else sent in
   * one PUT (bytes, no chunkSize) or in PATCH chunks (chunkSize, or an async iterable source).
   */
  pushBlob(repository: string, data: Uint8Array | AsyncIterable<Uint8Array>, options: PushBlobOptions = {}): Promise<PushBlobResult> {
    return this.#guard(async () => {
      const repo = this.#repository(repository);
      const context = this.#context('push blob', repo);
      let digest = options.digest;
      if (digest !== undefined) this.#checkDigest(digest, context);
      if (data instanceof Uint8Array) {
        const computed = digestOf(data, digest);
        if (digest !== undefined && digest !== computed) {
          throw new RegistryError('E_REGISTRY_DIGEST_MISMATCH', `push blob to ${repo}: the data hashes to ${computed}, not the given ${digest}`, context);
        }
        digest = computed;
      }
      if (digest !== undefined && options.skipExisting !== false) {
        const existing = await this.blobExists(repo, digest);
        if (existing) return { digest, size: existing.size, outcome: 'existed' };
      }
      let uploadUrl: URL;
      if (digest !== undefined && options.mountFrom !== undefined) {
        const mount = await this.mountBlob(repo, digest, options.mountFrom);
        if (mount.mounted) {
          const size = data instanceof Uint8Array ? data.length : ((await this.blobExists(repo, digest))?.size ?? 0);
          return { digest, size, outcome: 'mounted' };
        }
        uploadUrl = new URL(mount.uploadUrl);
      } else if (options.uploadUrl !== undefined) {
        uploadUrl = new URL(options.uploadUrl);
      } else {
        uploadUrl = await this.#startUpload(repo, context);
      }
      if (data instanceof Uint8Array && options.chunkSize === undefined) {
        await this.#finishUpload(uploadUrl, digest as string, data, context);
        return { digest: digest as string, size: data.length, outcome: 'uploaded' };
      }
      const chunkSize = options.chunkSize ?? DEFAULT_CHUNK;
      if (!(chunkSize > 0)) throw new TypeError('chunkSize must be a positive number of bytes');
      const hash = createHash(algorithmOf(digest));
      let offset = 0;
      for await (const chunk of rechunk(data instanceof Uint8Array ? [data] : data, chunkSize)) {
        hash.update(chunk);
        uploadUrl = await this.#patch(uploadUrl, chunk, offset, context);
        offset += chunk.length;
      }
      const computed = `${algorithmOf(digest)}:${hash.digest('hex')}`;
      if (digest !== undefined && computed !== digest) {
        throw new RegistryError('E_REGISTRY_DIGEST_MISMATCH', `push blob to ${repo}: the data hashes to ${computed}, not the given ${digest}`, context);
      }
      await this.#finishUpload(uploadUrl, computed, undefined, context);
      return { digest: computed, size: offset, outcome: 'uploaded' };
    });
  }

  async #patch(uploadUrl: URL, chunk: Uint8Array, offset: number, context: RegistryErrorContext): Promise<URL> {
    const response = await this.#call({
      method: 'PATCH',
      target: uploadUrl,
      scopes: [`repository:${context.repository}:pull,push`],
      headers: {
        'content-type': 'application/octet-stream',
        'content-range': `${offset}-${offset + chunk.length - 1}`,
      },
      body: chunk,
      idempotent: false,
      context,
      expect: [202, 204],
    });
    await response.body.dump();
    const range = header(response, 'range');
    const end = range === undefined ? undefined : /^(?:bytes=)?0-(\d+)$/.exec(range)?.[1];
    if (end !== undefined && Number(end) !== offset + chunk.length - 1) {
      throw new RegistryError('E_REGISTRY_PROTOCOL', `push blob to ${context.repository}: registry ${this.registry} has bytes ${range} after a chunk ending at ${offset + chunk.length - 1}`, context);
    }
    return header(response, 'location') === undefined ? uploadUrl : this.#location(response, context);
  }

  async #finishUpload(uploadUrl: URL, digest: string, data: Uint8Array | undefined, context: RegistryErrorContext): Promise<void> {
    // The Location may already carry a query (e.g. distribution's _state), so append rather than replace.
    const url = new URL(uploadUrl);
    url.search = `${url.search ? `${url.search}&` : '?'}digest=${encodeURIComponent(digest)}`;
    const response = await this.#call({
      method: 'PUT',
      target: url,
      scopes: [`repository:${context.repository}:pull,push`],
      headers: { 'content-type': 'application/octet-stream' },
      ...(data === undefined ? {} : { body: data }),
      idempotent: false,
      context,
      expect: [201, 204],
    });
    await response.body.dump();
    const stored = header(response, 'docker-content-digest');
    if (stored !== undefined && stored !== digest) {
      throw new RegistryError('E_REGISTRY_DIGEST_MISMATCH', `push blob to ${context.repository}: registry ${this.registry} stored ${stored}, we sent ${digest}`, context);
    }
  }

  /** Every tag of a repository, following the Link header across pages. */
  listTags(repository: string, options: { pageSize?: number } = {}): Promise<string[]> {
    return this.#guard(async () => {
      const repo = this.#repository(repository);
      const context = this.#context('list tags', repo);
      const tags: string[] = [];
      let target: string | URL = `/v2/${repo}/tags/list${options.pageSize ? `?n=${options.pageSize}` : ''}`;
      for (let page = 0; page < 10_000; page++) {
        const response = await this.#call({ method: 'GET', target, scopes: [`repository:${repo}:pull`], context, expect: [200] });
        const body = await readBody(response, 16 * 1024 * 1024, context);
        let parsed: { tags?: unknown };
        try {
          parsed = JSON.parse(body.toString('utf8')) as { tags?: unknown };
        } catch {
          throw new RegistryError('E_REGISTRY_PROTOCOL', `list tags of ${repo} at registry ${this.registry}: the answer is not JSON`, context);
        }
        if (Array.isArray(parsed.tags)) tags.push(...parsed.tags.filter((t): t is string => typeof t === 'string'));
        const next = nextLink(header(response, 'link'));
        if (next === undefined) return tags;
        target = new URL(next, response.url);
      }
      throw new RegistryError('E_REGISTRY_PROTOCOL', `list tags of ${repo} at registry ${this.registry}: more than 10000 pages`, context);
    });
  }
}

/** The URL of rel="next" in an RFC 8288 Link header. */
export function nextLink(link: string | undefined): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(/,(?=\s*<)/)) {
    const match = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (match && /;\s*rel="?next"?/i.test(match[2] ?? '')) return match[1];
  }
  return undefined;
}

function algorithmOf(digest: string | undefined): string {
  return digest?.split(':')[0] ?? 'sha256';
}

/** Digest of data with the algorithm `like` uses (sha256 by default). */
function digestOf(data: Uint8Array, like: string | undefined): string {
  const algorithm = algorithmOf(like);
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

async function* rechunk(source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  let pending: Buffer[] = [];
  let pendingSize = 0;
  for await (const piece of source) {
    let rest = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    while (rest.length > 0) {
      const take = Math.min(size - pendingSize, rest.length);
      pending.push(rest.subarray(0, take));
      pendingSize += take;
      rest = rest.subarray(take);
      if (pendingSize === size) {
        yield Buffer.concat(pending);
        pending = [];
        pendingSize = 0;
      }
    }
  }
  if (pendingSize > 0) yield Buffer.concat(pending);
}
