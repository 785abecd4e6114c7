// A runtime image from another registry is copied into the target registry once, by digest, into
// `<namespace>/kubeless-base/<base repository>`; every function image then mounts its base layers
// from there. So a second function on the same base moves no base bytes at all, where a copy into
// each function's own repository would stream the base again for every function. The manifest is
// put by digest (no tag): it keeps the blobs referenced, so garbage collection leaves them.
import { BuilderError } from '../errors.ts';
import type { RegistryClient } from '../registry/client.ts';
import type { AssembledImage } from './assemble.ts';
import type { BaseImage } from './base.ts';
import { addCounts, copyBlobs, emptyCounts, type ByteCounts, type CopyBlobsOptions } from './copy-blobs.ts';

const MIRROR_SEGMENT = 'kubeless-base';

/** Mirrors known to hold a base (`registry/repository@digest`): a mirror, once made, is not asked for again in this process. */
const known = new Set<string>();

/** Where the target registry keeps its copy of `baseRepository`, beside the function repository `targetPath` (`ns/fn`). */
function mirrorRepository(targetPath: string, baseRepository: string): string {
  const slash = targetPath.lastIndexOf('/');
  return `${slash === -1 ? '' : targetPath.slice(0, slash + 1)}${MIRROR_SEGMENT}/${baseRepository}`;
}

/**
 * Copies each base of `images` that lies in another registry into its mirror repository (unless the
 * mirror has it), and points the images' base blobs at the mirror. A registry that refuses the mirror
 * repository (one that must be created beforehand, a token scoped to the function's repository) only
 * costs the optimisation: the base is then streamed into the function repository itself.
 */
export async function mirrorBases(images: AssembledImage[], bases: BaseImage[], options: Omit<CopyBlobsOptions, 'repository'> & { targetPath: string }): Promise<ByteCounts> {
  let counts = emptyCounts();
  const target: RegistryClient = options.target;
  for (const base of bases) {
    if (base.registry === target.registry) continue;
    const mirror = mirrorRepository(options.targetPath, base.repository);
    const name = `${target.registry}/${mirror}@${base.digest}`;
    try {
      if (!known.has(name) && (await target.manifestExists(mirror, base.digest)) === undefined) {
        const from = { kind: 'registry' as const, registry: base.registry, repository: base.repository };
        const copied = await copyBlobs([...base.layers, base.configDescriptor].map((descriptor) => ({ descriptor, source: from })), { ...options, repository: mirror });
        counts = addCounts(counts, copied);
        await target.putManifest(mirror, base.digest, base.manifest.bytes, base.manifest.mediaType);
        options.log?.({ event: 'base-mirrored', level: 'info', base: `${base.registry}/${base.repository}@${base.digest}`, mirror: `${target.registry}/${mirror}`, bytes: copied });
      }
      known.add(name);
    } catch (error) {
      if (!(error instanceof BuilderError) || error.kind !== 'user') throw error;
      options.log?.({ event: 'base-mirror-refused', level: 'warn', mirror: `${target.registry}/${mirror}`, code: error.code, message: error.message });
      continue;
    }
    for (const image of images) {
      for (const blob of image.layers) {
        if (blob.source.kind === 'registry' && blob.source.registry === base.registry && blob.source.repository === base.repository) {
          blob.source = { kind: 'registry', registry: target.registry, repository: mirror };
        }
      }
    }
  }
  return counts;
}
