// A local content-addressed store of image blobs (the runtime images' layers and configs), so that
// writing an image to an OCI layout or a docker archive downloads each base layer once per machine.
// A blob is stored under its digest only after its bytes were hashed and found to match (by put()
// itself, or for a download by the registry client's openBlob, whose stream fails at its end when
// they do not): it is written to a temporary file in the same directory and renamed into place, so a
// reader never sees half a blob and writers racing on the same digest (other builds, other
// processes) all succeed. Reading does not hash again: whoever reads a blob back checks it (the
// output writers do, and drop a blob that changed on disk).
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type ReadStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BuilderError } from '../errors.ts';
import type { RegistryClient } from '../registry/client.ts';
import { isDigest } from './reference.ts';

/** Environment variable naming the cache directory (the `--cache-dir` flag and `cacheDir` option win). */
export const CACHE_DIR_ENV = 'FUNCTION_IMAGE_BUILDER_CACHE_DIR';

/** Where the cache lives: $FUNCTION_IMAGE_BUILDER_CACHE_DIR, else $XDG_CACHE_HOME/function-image-builder, else ~/.cache/function-image-builder. */
export function defaultCacheDir(env: Record<string, string | undefined> = process.env): string {
  const explicit = env[CACHE_DIR_ENV];
  if (explicit) return explicit;
  // XDG: a relative XDG_CACHE_HOME is invalid and must be ignored.
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg && xdg.startsWith('/') ? xdg : join(env.HOME || homedir(), '.cache');
  return join(base, 'function-image-builder');
}

/**
 * The cache directory cannot be created, read or written. A directory the user may not write is a
 * setting to change (user); a full disk or an I/O error may pass (infrastructure).
 */
export class BlobCacheError extends BuilderError {
  constructor(message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    const code = (options.cause as NodeJS.ErrnoException | undefined)?.code ?? '';
    super('E_CACHE_UNUSABLE', ['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EEXIST'].includes(code) ? 'user' : 'infrastructure', message, options);
  }
}

/** Bytes that are not the size given, or do not hash to the digest they were stored under. */
export class BlobDigestError extends BuilderError {
  constructor(digest: string, computed: string | undefined, size: number, expectedSize?: number) {
    const found = computed === undefined ? `the ${size} bytes received are not the ${expectedSize} bytes expected` : `the ${size} bytes received hash to ${computed}`;
    super('E_CACHE_DIGEST_MISMATCH', 'infrastructure', `blob ${digest}: ${found}; nothing was stored`, {
      details: { digest, size, ...(computed === undefined ? {} : { computed }), ...(expectedSize === undefined ? {} : { expectedSize }) },
    });
  }
}

export interface FetchResult {
  digest: string;
  size: number;
  /** false: it was in the cache already and nothing was downloaded. */
  downloaded: boolean;
}

export class BlobCache {
  readonly dir: string;
  /** Downloads under way in this process, by digest: two builds on one base fetch each layer once. */
  readonly #fetching = new Map<string, Promise<FetchResult>>();

  constructor(dir: string = defaultCacheDir()) {
    this.dir = dir;
  }

  /** The file a blob is (or would be) stored in: <dir>/blobs/<algorithm>/<hex>. */
  path(digest: string): string {
    const [algorithm, hex] = checkedDigest(digest).split(':') as [string, string];
    return join(this.dir, 'blobs', algorithm, hex);
  }

  /** The stored blob's size, or undefined when it is not stored (or, given `size`, stored with another size). */
  async size(digest: string, expectedSize?: number): Promise<number | undefined> {
    try {
      const found = await stat(this.path(digest));
      if (!found.isFile() || (expectedSize !== undefined && found.size !== expectedSize)) return undefined;
      return found.size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw this.#unusable(`cannot read the blob cache at ${this.dir}`, error);
    }
  }

  /** A stored blob's bytes (fetch or put it first). */
  read(digest: string): ReadStream {
    return createReadStream(this.path(digest));
  }

  /** Forgets a stored blob (one found damaged); nothing when it is not there. */
  async remove(digest: string): Promise<void> {
    await rm(this.path(digest), { force: true });
  }

  /**
   * Stores `chunks` as `digest` when they hash to it (and, given `size`, have that length); otherwise
   * throws BlobDigestError and stores nothing. The temp file is removed on every failure.
   */
  put(digest: string, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, size?: number): Promise<number> {
    return this.#store(digest, chunks, size, true);
  }

  /**
   * Writes `chunks` to a temp file and renames it to `digest`'s path. `hash` false: the chunks come
   * from a source that verifies them itself and throws at their end when they do not match (openBlob),
   * so they are not hashed a second time; only their length is checked against `size`.
   */
  async #store(digest: string, chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, size: number | undefined, hash: boolean): Promise<number> {
    const final = this.path(digest);
    const dir = join(final, '..');
    try {
      await mkdir(dir, { recursive: true });
    } catch (error) {
      throw this.#unusable(`cannot create the blob cache directory ${dir}`, error);
    }
    // In the blob's own directory, so the rename cannot cross file systems; the dot keeps it apart from blobs.
    const temp = join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
    const [algorithm] = digest.split(':') as [string];
    const hasher = hash ? createHash(algorithm) : undefined;
    let received = 0;
    try {
      const counting = async function* () {
        for await (const chunk of chunks) {
          hasher?.update(chunk);
          received += chunk.length;
          yield chunk;
        }
      };
      await pipeline(Readable.from(counting(), { objectMode: false }), createWriteStream(temp, { flags: 'wx' }));
      if (size !== undefined && received !== size) throw new BlobDigestError(digest, undefined, received, size);
      const computed = hasher === undefined ? undefined : `${algorithm}:${hasher.digest('hex')}`;
      if (computed !== undefined && computed !== digest) throw new BlobDigestError(digest, computed, received);
      await rename(temp, final);
      return received;
    } catch (error) {
      await rm(temp, { force: true });
      if (error instanceof BuilderError) throw error;
      if (isFileSystemError(error)) throw this.#unusable(`cannot write blob ${digest} into the cache at ${this.dir}`, error);
      throw error;
    }
  }

  /**
   * Makes sure `digest` is stored, streaming it from `client`'s `repository` when it is not; reports
   * whether bytes were downloaded. Concurrent calls for one digest share one download. `client`'s
   * openBlob must verify the digest (RegistryClient's does): the bytes are not hashed again here.
   */
  fetch(client: Pick<RegistryClient, 'openBlob'>, repository: string, digest: string, size?: number): Promise<FetchResult> {
    const running = this.#fetching.get(digest);
    if (running) return running.then((result) => ({ ...result, downloaded: false }));
    const work = (async (): Promise<FetchResult> => {
      const stored = await this.size(digest, size);
      if (stored !== undefined) return { digest, size: stored, downloaded: false };
      const blob = await client.openBlob(repository, digest);
      const written = await this.#store(digest, blob.stream, size ?? blob.size, false);
      return { digest, size: written, downloaded: true };
    })();
    this.#fetching.set(digest, work);
    return work.finally(() => this.#fetching.delete(digest));
  }

  #unusable(message: string, cause: unknown): BlobCacheError {
    const reason = (cause as NodeJS.ErrnoException).code ?? (cause as Error).message;
    return new BlobCacheError(`${message} (${reason}); give a writable directory with --cache-dir or ${CACHE_DIR_ENV}`, { cause, details: { dir: this.dir } });
  }
}

function checkedDigest(digest: string): string {
  if (!isDigest(digest)) throw new TypeError(`"${digest}" is not a blob digest (sha256:<64 hex>)`);
  return digest;
}

function isFileSystemError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) && (error as NodeJS.ErrnoException).syscall !== undefined;
}
