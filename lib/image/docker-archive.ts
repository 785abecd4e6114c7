// Writes an image as a docker-archive: the tarball `docker save` makes and `docker load` (and skopeo's
// docker-archive: transport) reads. manifest.json lists the config and the layer files in order;
// the layers stay gzip-compressed as the registry holds them (docker load decompresses them, and the
// config's rootfs.diff_ids still name their uncompressed content). Entries are in a fixed order with
// fixed owners, modes and times, so the same image gives the same archive, byte for byte.
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { sha256Digest } from '../registry/manifest.ts';
import { readManifest, verifiedChunks, type LocalImage } from './local-image.ts';
import type { WrittenImage } from './oci-layout.ts';

const ENTRY = { mode: 0o644, uid: 0, gid: 0, mtime: new Date(0), type: 'file' } as const;

/** Writes the archive to `file`, which must not exist yet. */
export async function writeDockerArchive(file: string, image: LocalImage): Promise<WrittenImage> {
  const manifest = readManifest(image);
  const blobName = (digest: string) => `blobs/${digest.replace(':', '/')}`;
  const index = [{ Config: blobName(manifest.config.digest), RepoTags: [image.name], Layers: manifest.layers.map((l) => blobName(l.digest)) }];

  const pack = tar.pack();
  const written = pipeline(pack, createWriteStream(file, { flags: 'wx' }));
  // A failed write (a full disk) ends every entry still being added, instead of leaving it waiting.
  const writeFailed = new Promise<never>((_, reject) => written.catch(reject));
  writeFailed.catch(() => undefined);
  const add = (name: string, size: number, chunks: AsyncIterable<Uint8Array> | Uint8Array) =>
    Promise.race([
      writeFailed,
      new Promise<void>((resolve, reject) => {
        const entry = pack.entry({ ...ENTRY, name, size }, (error) => (error ? reject(error) : resolve()));
        if (chunks instanceof Uint8Array) entry.end(chunks);
        else pipeline(Readable.from(chunks), entry).catch(reject);
      }),
    ]);
  try {
    const manifestJson = Buffer.from(JSON.stringify(index));
    await add('manifest.json', manifestJson.length, manifestJson);
    // Directory entries before their files, as tar readers that do not create parents expect.
    for (const dir of ['blobs/', 'blobs/sha256/']) pack.entry({ ...ENTRY, type: 'directory', mode: 0o755, name: dir });
    await add(blobName(manifest.config.digest), image.config.length, image.config);
    const added = new Set<string>([manifest.config.digest]);
    for (const layer of manifest.layers) {
      if (added.has(layer.digest)) continue;
      added.add(layer.digest);
      await add(blobName(layer.digest), layer.size, verifiedChunks(layer, image.layer(layer), `the layers of ${image.name}`));
    }
    pack.finalize();
  } catch (error) {
    pack.destroy(error as Error);
    await written.catch(() => undefined);
    throw error;
  }
  await written;
  return { manifestDigest: sha256Digest(image.manifest), configDigest: manifest.config.digest };
}
