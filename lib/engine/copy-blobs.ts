// Puts an assembled image's blobs into the target repository, moving as few bytes as possible:
//   in the target already (HEAD)            → skipped;
//   in another repository of the same registry → cross-repository mount (no bytes move);
//   elsewhere                               → streamed from the source registry (its own credentials
//                                             and TLS) into the target in chunks, never to disk.
// Known without asking: a blob whose source is the target repository itself (a deps layer recorded
// there: the record's manifest names it, so the registry holds it), and a blob this process already
// put into or found in the target repository. Those cost no request, which is most of a code-only
// change. A registry that lost one since (garbage collection after a prune) refuses the manifest that
// names it; the caller then copies again with `verify` (append-build.ts).
// A blob whose copy fails for an infrastructure reason (a registry restarted, a 5xx, a broken
// connection) is tried again from the start with a new upload session; a mount the registry refuses
// falls back to streaming. Blobs go first; the caller pushes the manifest only when all are in.
import type { BuildLog } from '../build/types.ts';
import { sleep } from '../sleep.ts';
import type { RegistryClient } from '../registry/client.ts';
import { BuilderError } from '../errors.ts';
import { RegistryError } from '../registry/errors.ts';
import type { Descriptor } from '../registry/manifest.ts';
import type { AssembledBlob } from './assemble.ts';
import type { UploadSessions } from './upload-sessions.ts';

export interface ByteCounts {
  /** Bytes sent to the target registry. */
  uploaded: number;
  /** Bytes the target registry mounted from another repository of its own. */
  mounted: number;
  /** Bytes the target already had. */
  skipped: number;
}

export interface CopyBlobsOptions {
  target: RegistryClient;
  repository: string;
  /** A client of each source registry, by host (the target's own client for its own host). */
  source: (registry: string) => RegistryClient;
  log?: BuildLog;
  onBlob?: (descriptor: Descriptor, outcome: 'skipped' | 'mounted' | 'uploaded') => void;
  /** A cancelled build is not retried. */
  signal?: AbortSignal | undefined;
  /** true: ask the registry about every blob, trusting neither the source repository nor what this process saw. */
  verify?: boolean;
  /** Upload sessions opened beforehand, for the blobs made by this build. */
  sessions?: UploadSessions | undefined;
}

const SMALL_BLOB = 256 * 1024;
/** Attempts per blob for infrastructure failures, 0.25 s, 0.5 s, 1 s, 2 s apart: a registry restarting has about 4 s to come back. */
const ATTEMPTS = 5;
/** Blobs copied at once: most are a HEAD or a mount, one round trip each. */
const CONCURRENCY = 8;

/** `registry/repository@digest` of blobs this process saw in a repository, oldest first; bounded. */
const seen = new Set<string>();
const SEEN_ENTRIES = 100_000;
const seenKey = (registry: string, repository: string, digest: string) => `${registry}/${repository}@${digest}`;

function remember(registry: string, repository: string, digest: string): void {
  const key = seenKey(registry, repository, digest);
  seen.delete(key);
  seen.add(key);
  if (seen.size > SEEN_ENTRIES) seen.delete(seen.values().next().value as string);
}

/** Forgets what this process saw in `repository`: the registry said a blob is missing there. */
export function forgetSeenBlobs(registry: string, repository: string): void {
  const prefix = `${registry}/${repository}@`;
  for (const key of seen) if (key.startsWith(prefix)) seen.delete(key);
}

export const emptyCounts = (): ByteCounts => ({ uploaded: 0, mounted: 0, skipped: 0 });

export const addCounts = (a: ByteCounts, b: ByteCounts): ByteCounts => ({ uploaded: a.uploaded + b.uploaded, mounted: a.mounted + b.mounted, skipped: a.skipped + b.skipped });

export async function copyBlobs(blobs: AssembledBlob[], options: CopyBlobsOptions): Promise<ByteCounts> {
  const counts = emptyCounts();
  // One copy per digest: an image (or an index's images) may name the same blob twice.
  const unique = [...new Map(blobs.map((blob) => [blob.descriptor.digest, blob])).values()];
  let next = 0;
  const worker = async () => {
    while (next < unique.length) {
      const blob = unique[next++] as AssembledBlob;
      const outcome = await copyWithRetry(blob, options);
      remember(options.target.registry, options.repository, blob.descriptor.digest);
      counts[outcome] += blob.descriptor.size;
      options.onBlob?.(blob.descriptor, outcome);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, unique.length) }, worker));
  return counts;
}

async function copyWithRetry(blob: AssembledBlob, options: CopyBlobsOptions): Promise<keyof ByteCounts> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await copyBlob(blob, options);
    } catch (error) {
      const retryable = (error instanceof BuilderError && error.kind === 'infrastructure' && error.code !== 'E_BUILD_ABORTED' && error.code !== 'E_BUILD_TIMEOUT') || uploadLost(error);
      if (!retryable || attempt >= ATTEMPTS || options.signal?.aborted) throw error;
      options.log?.({ event: 'blob-retry', level: 'warn', digest: blob.descriptor.digest, attempt, code: (error as BuilderError).code, message: (error as Error).message });
      await sleep(250 * 2 ** (attempt - 1), options.signal).catch(() => undefined);
      if (options.signal?.aborted) throw error;
    }
  }
}

/** The registry forgot the upload session (restarted without a shared secret, or expired it): a new upload can still pass. */
function uploadLost(error: unknown): boolean {
  return error instanceof RegistryError && error.registryErrors.some((entry) => entry.code === 'BLOB_UPLOAD_UNKNOWN' || entry.code === 'BLOB_UPLOAD_INVALID');
}

async function copyBlob(blob: AssembledBlob, options: CopyBlobsOptions): Promise<keyof ByteCounts> {
  const { target, repository } = options;
  const { digest } = blob.descriptor;
  const source = blob.source;
  if (!options.verify) {
    const inTarget = source.kind === 'registry' && source.registry === target.registry && source.repository === repository;
    if (inTarget || seen.has(seenKey(target.registry, repository, digest))) return 'skipped';
  }
  if (source.kind === 'bytes') {
    // A small blob made by this build (code layer, config) is nearly always new: sending it costs
    // what asking first would, so it is sent without the HEAD.
    if (source.data.length > SMALL_BLOB && (await target.blobExists(repository, digest))) return 'skipped';
    const uploadUrl = await options.sessions?.take();
    await target.pushBlob(repository, source.data, { digest, skipExisting: false, ...(uploadUrl === undefined ? {} : { uploadUrl }) });
    return 'uploaded';
  }
  if (await target.blobExists(repository, digest)) return 'skipped';
  if (source.registry === target.registry) {
    try {
      const mount = await target.mountBlob(repository, digest, source.repository);
      if (mount.mounted) return 'mounted';
      options.log?.({ event: 'mount-declined', level: 'info', digest, from: source.repository });
    } catch (error) {
      // A registry (or a token) that refuses the mount may still take the bytes.
      if (!(error instanceof BuilderError) || error.kind !== 'user') throw error;
      options.log?.({ event: 'mount-refused', level: 'warn', digest, from: source.repository, code: error.code });
    }
  }
  const from = options.source(source.registry);
  const stream: AsyncIterable<Uint8Array> = {
    async *[Symbol.asyncIterator]() {
      yield* (await from.openBlob(source.repository, digest)).stream;
    },
  };
  await target.pushBlob(repository, stream, { digest, skipExisting: false });
  return 'uploaded';
}
