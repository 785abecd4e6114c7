// Builds writing one oci:DIR (or docker-archive:FILE) at the same time, on the real file system: every
// write succeeds, the path ends up holding one whole layout (the last writer's) and nothing is left
// beside it. The images hold only layers made in memory, so no registry is needed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageManifest } from '../../lib/engine/manifest.ts';
import { buildLayer } from '../../lib/engine/layer.ts';
import { writeImageOutput, type OutputImage } from '../../lib/engine/write-output.ts';
import { BlobCache } from '../../lib/image/blob-cache.ts';
import { parseOutputSpec } from '../../lib/image/output-spec.ts';
import { MEDIA_TYPE, sha256Digest } from '../../lib/registry/manifest.ts';

const dir = mkdtempSync(join(tmpdir(), 'fib-output-race-'));
const cache = new BlobCache(join(dir, 'cache'));

test.after(() => rmSync(dir, { recursive: true, force: true }));

/** A one-layer OCI image whose layer holds `text` (and `padding` files, so that writing it takes a while). */
async function image(text: string, padding = 40): Promise<OutputImage> {
  const entries = [{ name: 'kubeless', type: 'directory' as const, mode: 0o755, uid: 1000, gid: 1000 }];
  for (let i = 0; i < padding; i++) entries.push({ name: `kubeless/f${i}.txt`, type: 'file', mode: 0o644, uid: 1000, gid: 1000, content: Buffer.from(`${text} ${i}\n`.repeat(200)) } as never);
  const layer = await buildLayer(entries);
  const data = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.diffId] } }));
  const config = { mediaType: MEDIA_TYPE.ociConfig, digest: sha256Digest(data), size: data.length };
  const layerDescriptor = { mediaType: MEDIA_TYPE.ociLayerGzip, digest: layer.digest, size: layer.size };
  return {
    manifest: imageManifest('oci', config, [layerDescriptor]),
    config: { descriptor: config, source: { kind: 'bytes', data } },
    layers: [{ descriptor: layerDescriptor, source: { kind: 'bytes', data: layer.blob } }],
  };
}

function write(spec: string, img: OutputImage) {
  return writeImageOutput(parseOutputSpec(spec, dir), img, { name: 'kubeless.local/race:1', cache, client: () => ({ openBlob: () => Promise.reject(new Error('no registry here')) }) });
}

/** Every file under `root` with its sha256. */
function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isFile()) out[path.slice(root.length)] = createHash('sha256').update(readFileSync(path)).digest('hex');
  }
  return out;
}

const strays = () => readdirSync(dir).filter((name) => /\.(tmp|old)-/.test(name));

test('writers of the same image to one oci:DIR at once all succeed and leave that layout whole', async () => {
  const img = await image('same');
  await write('oci:alone', img);
  const expected = tree(join(dir, 'alone'));
  for (let round = 0; round < 15; round++) {
    const results = await Promise.allSettled(Array.from({ length: 4 }, () => write('oci:shared', img)));
    const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
    assert.equal(failed, [], `round ${round}`);
    assert.equal(tree(join(dir, 'shared')), expected, `round ${round}: the layout is whole`);
    assert.equal(strays(), [], `round ${round}: nothing left beside it`);
  }
});

test('writers of different images to one oci:DIR: each succeeds and the path holds one of them whole', async () => {
  const images = await Promise.all(['one', 'two', 'three'].map((text) => image(text)));
  const alone = await Promise.all(images.map(async (img, i) => {
    await write(`oci:alone-${i}`, img);
    return JSON.stringify(tree(join(dir, `alone-${i}`)));
  }));
  for (let round = 0; round < 10; round++) {
    const results = await Promise.allSettled(images.map((img) => write('oci:mixed', img)));
    assert.equal(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)), [], `round ${round}`);
    assert.ok(alone.includes(JSON.stringify(tree(join(dir, 'mixed')))), `round ${round}: one whole layout, not a mix`);
    assert.equal(strays(), []);
  }
});

test('writers of one docker-archive:FILE at once all succeed and leave one whole file', async () => {
  const img = await image('archive');
  await write('docker-archive:alone.tar', img);
  const expected = readFileSync(join(dir, 'alone.tar'));
  const results = await Promise.allSettled(Array.from({ length: 4 }, () => write('docker-archive:shared.tar', img)));
  assert.equal(results.filter((r) => r.status === 'rejected').length, 0);
  assert.ok(readFileSync(join(dir, 'shared.tar')).equals(expected));
  assert.equal(strays(), []);
});

test.run();
