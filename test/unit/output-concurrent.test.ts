// Builds writing one oci:DIR (or docker-archive:FILE) at the same time, on the real file system: every
// write succeeds, the path ends up holding one whole layout (the last writer's) and nothing is left
// beside it. Races too rare to meet by chance (other writes replacing the layout again and again) and
// refused renames are forced through the writer's rename seam. The images hold only layers made in
// memory, so no registry is needed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { imageManifest } from '../../lib/engine/manifest.ts';
import { buildLayer } from '../../lib/engine/layer.ts';
import { writeImageOutput, type OutputImage } from '../../lib/engine/write-output.ts';
import { BlobCache } from '../../lib/image/blob-cache.ts';
import { parseOutputSpec } from '../../lib/image/output-spec.ts';
import { MEDIA_TYPE, sha256Digest } from '../../lib/registry/manifest.ts';
import { fileTree, strays } from '../support/files.ts';

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

function write(spec: string, img: OutputImage, seam: { rename?: (from: string, to: string) => Promise<void> } = {}) {
  return writeImageOutput(parseOutputSpec(spec, dir), img, { name: 'kubeless.local/race:1', cache, client: () => ({ openBlob: () => Promise.reject(new Error('no registry here')) }), ...seam });
}

/** The fs rename, counting the renames of a written layout into `path` that met another writer's there. */
function counting(path: string) {
  const count = { retries: 0 };
  const seam = async (from: string, to: string) => {
    try {
      await rename(from, to);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (to === path && (code === 'ENOTEMPTY' || code === 'EEXIST')) count.retries++;
      throw error;
    }
  };
  return { count, seam };
}

test('writers of the same image to one oci:DIR at once all succeed and leave that layout whole', async () => {
  const img = await image('same');
  await write('oci:alone', img);
  const expected = fileTree(join(dir, 'alone'));
  const { count, seam } = counting(join(dir, 'shared'));
  for (let round = 0; round < 15; round++) {
    const results = await Promise.allSettled(Array.from({ length: 4 }, () => write('oci:shared', img, { rename: seam })));
    const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
    assert.equal(failed, [], `round ${round}`);
    assert.equal(fileTree(join(dir, 'shared')), expected, `round ${round}: the layout is whole`);
    assert.equal(strays(dir), [], `round ${round}: nothing left beside it`);
  }
  // 4 writers of one layout meet each other's in most rounds (20 to 35 retries in 15 rounds here).
  assert.ok(count.retries > 0, 'some write met another one\'s layout and moved it aside again');
});

test('writers of different images to one oci:DIR: each succeeds and the path holds one of them whole', async () => {
  const images = await Promise.all(['one', 'two', 'three'].map((text) => image(text)));
  const alone = await Promise.all(images.map(async (img, i) => {
    await write(`oci:alone-${i}`, img);
    return JSON.stringify(fileTree(join(dir, `alone-${i}`)));
  }));
  const { count, seam } = counting(join(dir, 'mixed'));
  for (let round = 0; round < 10; round++) {
    const results = await Promise.allSettled(images.map((img) => write('oci:mixed', img, { rename: seam })));
    assert.equal(results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)), [], `round ${round}`);
    assert.ok(alone.includes(JSON.stringify(fileTree(join(dir, 'mixed')))), `round ${round}: one whole layout, not a mix`);
    assert.equal(strays(dir), []);
  }
  assert.ok(count.retries > 0, 'some write met another one\'s layout and moved it aside again');
});

test('writers of one docker-archive:FILE at once all succeed and leave one whole file', async () => {
  const img = await image('archive');
  await write('docker-archive:alone.tar', img);
  const expected = readFileSync(join(dir, 'alone.tar'));
  const results = await Promise.allSettled(Array.from({ length: 4 }, () => write('docker-archive:shared.tar', img)));
  assert.equal(results.filter((r) => r.status === 'rejected').length, 0);
  assert.ok(readFileSync(join(dir, 'shared.tar')).equals(expected));
  assert.equal(strays(dir), []);
});

/**
 * A rename seam for writes to `path`: each rename of a written layout into it fails with the next of
 * `failures`. Before an ENOTEMPTY another writer's layout (a directory holding `writer`: its number)
 * goes in, as when that writer won the race; other failures leave the path as it is.
 */
function refusing(path: string, failures: string[]) {
  let writers = 0;
  return async (from: string, to: string) => {
    const code = to === path && basename(from).startsWith(`.${basename(path)}.tmp-`) ? failures.shift() : undefined;
    if (code === undefined) return rename(from, to);
    if (code === 'ENOTEMPTY') {
      const other = join(dir, `writer-${++writers}`);
      mkdirSync(other);
      writeFileSync(join(other, 'writer'), String(writers));
      await rename(other, path);
    }
    throw Object.assign(new Error(`${code}: forced by the test, rename '${from}' -> '${to}'`), { code, syscall: 'rename' });
  };
}

const writerAt = (path: string) => readFileSync(join(path, 'writer'), 'utf8');

test('a write whose layout other writes replace 32 times in a row fails E_OUTPUT_BUSY; the last of theirs stays, nothing beside it', async () => {
  const img = await image('busy', 1);
  await write('oci:busy', img);
  const path = join(dir, 'busy');
  const failures = Array.from({ length: 32 }, () => 'ENOTEMPTY');
  try {
    await write('oci:busy', img, { rename: refusing(path, failures) });
    assert.unreachable('the write fails');
  } catch (error) {
    assert.is((error as { code?: string }).code, 'E_OUTPUT_BUSY', String(error));
    assert.is((error as { kind?: string }).kind, 'infrastructure');
  }
  assert.is(failures.length, 0, 'all 32 swaps were tried');
  assert.is(writerAt(path), '32');
  assert.equal(strays(dir), []);
});

test('a rename into place refused after other writes went in: E_OUTPUT_INVALID (user for permissions), the newest layout moved aside is put back, nothing beside it', async () => {
  const img = await image('refused', 1);
  for (const [code, kind] of [['EACCES', 'user'], ['EROFS', 'user'], ['EIO', 'infrastructure'], ['ENOSPC', 'infrastructure']]) {
    await write('oci:refused', img);
    const path = join(dir, 'refused');
    try {
      // The previous output and writer 1's layout are moved aside; writer 2's was moved aside last.
      await write('oci:refused', img, { rename: refusing(path, ['ENOTEMPTY', 'ENOTEMPTY', code!]) });
      assert.unreachable('the write fails');
    } catch (error) {
      const failure = error as { code?: string; kind?: string; message: string };
      assert.is(failure.code, 'E_OUTPUT_INVALID', failure.message);
      assert.is(failure.kind, kind, code);
      assert.match(failure.message, path);
      assert.match(failure.message, code!);
      assert.match(failure.message, kind === 'user' ? 'give a path this user may write' : 'forced by the test');
    }
    assert.is(writerAt(path), '2', `${code}: the layout whose writer reported success last stays`);
    assert.equal(strays(dir), [], code);
    rmSync(path, { recursive: true });
  }
});

test('a docker-archive:FILE whose rename into place is refused: E_OUTPUT_INVALID, the old file stays, nothing beside it', async () => {
  const img = await image('archive-refused', 1);
  await write('docker-archive:refused.tar', img);
  const path = join(dir, 'refused.tar');
  const before = readFileSync(path);
  const other = await image('archive-refused-2', 1);
  try {
    await write('docker-archive:refused.tar', other, { rename: refusing(path, ['EACCES']) });
    assert.unreachable('the write fails');
  } catch (error) {
    assert.is((error as { code?: string }).code, 'E_OUTPUT_INVALID', String(error));
    assert.is((error as { kind?: string }).kind, 'user');
  }
  assert.ok(readFileSync(path).equals(before));
  assert.equal(strays(dir), []);
});

test.run();
