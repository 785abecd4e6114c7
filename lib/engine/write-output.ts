// Writes an assembled image to an `oci:DIR` or `docker-archive:FILE` output instead of pushing it.
// The blobs the build made are in memory; the base image's layers come from the blob cache, which
// fetches the ones it lacks from the base's registry (so a second build on that base downloads none).
// The output is written under a temporary name beside its path and renamed into place only when
// complete: a failure or a cancelled build leaves the old output (or none), never half of one, and
// builds writing the same output at once each leave a whole one (the last one's).
import { randomBytes } from 'node:crypto';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { BuilderError } from '../errors.ts';
import type { BlobCache } from '../image/blob-cache.ts';
import { writeDockerArchive } from '../image/docker-archive.ts';
import { ImageContentError, type LocalImage } from '../image/local-image.ts';
import { writeOciLayout, type WrittenImage } from '../image/oci-layout.ts';
import { checkOutputPath, OutputSpecError, type OutputSpec } from '../image/output-spec.ts';
import type { RegistryClient } from '../registry/client.ts';
import type { AssembledImage } from './assemble.ts';

/** What the writers need of an assembled image (one platform's). */
export type OutputImage = Pick<AssembledImage, 'manifest' | 'config' | 'layers'>;

export interface OutputResult extends WrittenImage {
  format: OutputSpec['format'];
  path: string;
  /** Layer bytes downloaded into the cache by this call, found in the cache already, and made by the build. */
  bytes: { downloaded: number; cached: number; local: number };
}

export interface OutputOptions {
  /** `host/ns/fn:tag`, the name the image gets in the output. */
  name: string;
  cache: BlobCache;
  /** The registry client of a base layer's registry host. */
  client: (host: string) => Pick<RegistryClient, 'openBlob'>;
  onProgress?: (message: string) => void;
  signal?: AbortSignal;
  /** Every rename of the swap into place goes through this (fs rename otherwise): lets a test force races and refusals. */
  rename?: (from: string, to: string) => Promise<void>;
}

export async function writeImageOutput(output: OutputSpec, image: OutputImage, options: OutputOptions): Promise<OutputResult> {
  const progress = options.onProgress ?? (() => {});
  checkOutputPath(output);
  const bytes = { downloaded: 0, cached: 0, local: 0 };
  const made = new Map<string, Buffer>();
  for (const { descriptor, source } of image.layers) {
    if (source.kind === 'bytes') {
      made.set(descriptor.digest, source.data);
      bytes.local += descriptor.size;
    }
  }
  const base = image.layers.filter((layer) => layer.source.kind === 'registry');
  for (const [i, { descriptor, source }] of base.entries()) {
    if (source.kind !== 'registry') continue;
    options.signal?.throwIfAborted();
    const fetched = await options.cache.fetch(options.client(source.registry), source.repository, descriptor.digest, descriptor.size);
    bytes[fetched.downloaded ? 'downloaded' : 'cached'] += fetched.size;
    const what = `base layer ${i + 1}/${base.length} (${descriptor.digest.slice(7, 19)}, ${formatBytes(descriptor.size)})`;
    progress(fetched.downloaded ? `${what} downloaded into the cache` : `${what} found in the cache`);
  }

  const local: LocalImage = {
    name: options.name,
    manifest: image.manifest.bytes,
    config: image.config.source.data,
    layer: (descriptor) => {
      const data = made.get(descriptor.digest);
      return data === undefined ? options.cache.read(descriptor.digest) : once(data);
    },
  };
  progress(`writing ${output.spec}`);
  const temp = siblingTempPath(output.path, 'tmp', randomBytes(6).toString('hex'));
  try {
    const written = output.format === 'oci' ? await writeOciLayout(temp, local) : await writeDockerArchive(temp, local);
    options.signal?.throwIfAborted();
    await replace(output, temp, options.rename ?? rename);
    return { ...written, format: output.format, path: output.path, bytes };
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    const digest = error instanceof ImageContentError ? error.details.digest : undefined;
    if (typeof digest === 'string' && !made.has(digest)) {
      // A cached blob that changed on disk: drop it, so that the next run downloads it again.
      await options.cache.remove(digest);
      throw new ImageContentError(`${error instanceof Error ? error.message : String(error)}; the blob was removed from the cache at ${options.cache.dir}, run the build again`, {
        ...(error as ImageContentError).details,
      });
    }
    throw error;
  }
}

/** Swaps a layout directory may take while other writes of the same DIR keep putting theirs in. */
const MAX_SWAPS = 32;

/** Other writes to the same oci:DIR kept replacing it, so this write could not put its layout in place. */
class OutputBusyError extends BuilderError {
  constructor(output: OutputSpec) {
    super('E_OUTPUT_BUSY', 'infrastructure', `output "${output.spec}": other builds writing ${output.path} at the same time replaced it ${MAX_SWAPS} times while this one put its layout in place; write again, or give each build its own directory`, {
      details: { output: output.spec },
    });
  }
}

/**
 * Moves `temp` to the output's path: a file is replaced by the rename (atomic, so of writers racing
 * on one file the last wins); a layout directory is swapped in. Writers racing on one directory each
 * move aside whatever is at the path and rename theirs in; a rename that meets a directory again
 * (another writer's, put in meanwhile) moves that aside too. Each such retry means another layout
 * went in whole, so the path always holds one complete layout, the last writer's stays, and every
 * writer removes what it moved aside.
 */
async function replace(output: OutputSpec, temp: string, rename: (from: string, to: string) => Promise<void>): Promise<void> {
  if (output.format === 'docker-archive') {
    return rename(temp, output.path).catch((error: unknown) => {
      throw cannotPlace(output, error);
    });
  }
  const aside: string[] = [];
  try {
    for (let swap = 0; swap < MAX_SWAPS; swap++) {
      const old = siblingTempPath(output.path, 'old', randomBytes(6).toString('hex'));
      if (await moveAside(output, old, rename)) aside.push(old);
      try {
        await rename(temp, output.path);
        return;
      } catch (error) {
        if (!occupied(error)) throw cannotPlace(output, error);
      }
    }
    throw new OutputBusyError(output);
  } catch (error) {
    // Put back the last layout moved aside, unless another write's is there now: the older ones were
    // replaced by it, and its writer may already have reported success.
    const newest = aside.at(-1);
    if (newest !== undefined && (await rename(newest, output.path).then(() => true, () => false))) aside.pop();
    throw error;
  } finally {
    await Promise.all(aside.map((old) => rm(old, { recursive: true, force: true })));
  }
}

/** Renames what is at the output's path to `old`; false when nothing is there. */
async function moveAside(output: OutputSpec, old: string, rename: (from: string, to: string) => Promise<void>): Promise<boolean> {
  try {
    await rename(output.path, old);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw cannotPlace(output, error);
  }
}

/** A rename onto a directory that is not empty: another writer's layout is at the path. */
function occupied(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOTEMPTY' || code === 'EEXIST';
}

/**
 * A rename into place refused after the image was written. A path this user may not write fails
 * the same way again (user); anything else (an I/O error, a full disk) may pass on a retry.
 */
function cannotPlace(output: OutputSpec, cause: unknown): OutputSpecError {
  const code = (cause as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new OutputSpecError(output.spec, `the image cannot be renamed into place at ${output.path} (${code}); give a path this user may write`, { cause });
  }
  return new OutputSpecError(output.spec, `the image could not be renamed into place at ${output.path}: ${(cause as Error).message}; write again`, { cause, kind: 'infrastructure' });
}

/** A hidden name beside `path`, in its directory so the final rename stays on one file system. */
function siblingTempPath(path: string, purpose: 'tmp' | 'old', suffix: string): string {
  return join(dirname(path), `.${basename(path)}.${purpose}-${suffix}`);
}

async function* once(data: Buffer): AsyncGenerator<Buffer> {
  yield data;
}

function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}
