import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { bunzip, DecompressionLimitError } from '../../lib/function/archive/decompress.ts';
import { type ArchiveLimits } from '../../lib/function/archive/limits.ts';
import { ArchiveUnsafeError } from '../../lib/function/errors.ts';
import { parseFunction } from '../../lib/function/parse.ts';
import { materialiseSources, type SourceOptions } from '../../lib/function/source.ts';
import { bzip2, gzip, makeTar, makeZip, xz, type TestEntry, type ZipEntry } from '../support/archives.ts';

const NODE: SourceOptions = { depName: 'package.json', fileNameSuffix: '.js' };

function unpack(bytes: Buffer, type: 'zip' | 'compressedtar', limits?: Partial<ArchiveLimits>) {
  const spec = parseFunction({
    apiVersion: 'kubeless.io/v1beta1',
    kind: 'Function',
    metadata: { name: 'evil', namespace: 'safety' },
    spec: { handler: 'handler.hello', runtime: 'nodejs14', function: bytes.toString('base64'), 'function-content-type': `base64+${type}` },
  });
  return materialiseSources(spec, limits === undefined ? NODE : { ...NODE, limits });
}

async function rejected(promise: Promise<unknown>, entry: string, reason: RegExp): Promise<void> {
  try {
    await promise;
  } catch (error) {
    assert.instance(error, ArchiveUnsafeError, String(error));
    const unsafe = error as ArchiveUnsafeError;
    assert.is(unsafe.code, 'E_ARCHIVE_UNSAFE');
    assert.is(unsafe.kind, 'user');
    assert.is(unsafe.details.entry, entry, unsafe.message);
    assert.ok(unsafe.message.includes(JSON.stringify(entry)), `message names the entry: ${unsafe.message}`);
    assert.ok(unsafe.message.startsWith('function safety/evil: '), unsafe.message);
    assert.match(unsafe.message, reason);
    return;
  }
  return assert.unreachable(`expected E_ARCHIVE_UNSAFE for ${entry}, unpacking succeeded`) as never;
}

const ok: TestEntry = { name: 'handler.js', content: 'module.exports = {}' };

// [case, entries, offending entry, reason]
const hostile: [string, TestEntry[], string, RegExp][] = [
  ['absolute path', [ok, { name: '/etc/cron.d/evil', content: 'x' }], '/etc/cron.d/evil', /absolute path/],
  ['.. segment', [ok, { name: 'lib/../../evil.js', content: 'x' }], 'lib/../../evil.js', /"\.\." segment/],
  ['leading ..', [{ name: '../evil.js', content: 'x' }], '../evil.js', /"\.\." segment/],
  ['backslash traversal', [{ name: '..\\..\\evil.js', content: 'x' }], '..\\..\\evil.js', /holds "\\"/],
  ['symlink to an absolute path', [ok, { name: 'passwd', type: 'symlink', linkname: '/etc/passwd' }], 'passwd', /absolute path "\/etc\/passwd"/],
  ['symlink out through ..', [ok, { name: 'lib/up', type: 'symlink', linkname: '../../outside' }], 'lib/up', /points outside the function root/],
  ['symlink through a symlink', [ok, { name: 'here', type: 'symlink', linkname: '.' }, { name: 'escape', type: 'symlink', linkname: 'here/../x' }], 'escape', /passes through the symlink "here"/],
  ['file beneath a symlink', [ok, { name: 'dir', type: 'symlink', linkname: 'lib' }, { name: 'dir/evil.js', content: 'x' }], 'dir/evil.js', /lies beneath "dir", which is a symlink/],
  ['symlink over a directory', [{ name: 'lib/a.js', content: 'x' }, { name: 'lib', type: 'symlink', linkname: '.' }], 'lib', /directory elsewhere/],
  ['duplicate file', [ok, { name: './handler.js', content: 'again' }], './handler.js', /appears twice/],
];
const tarOnly: [string, TestEntry[], string, RegExp][] = [
  ['character device', [ok, { name: 'null', type: 'character-device' }], 'null', /character device/],
  ['block device', [ok, { name: 'sda', type: 'block-device' }], 'sda', /block device/],
  ['fifo', [ok, { name: 'pipe', type: 'fifo' }], 'pipe', /fifo/],
  ['hard link outside', [ok, { name: 'shadow', type: 'link', linkname: '/etc/shadow' }], 'shadow', /not a file earlier in the archive/],
  ['hard link to nothing', [ok, { name: 'ghost', type: 'link', linkname: 'missing.js' }], 'ghost', /not a file earlier in the archive/],
];

for (const [name, entries, entry, reason] of [...hostile, ...tarOnly]) {
  test(`tar: ${name} is rejected naming ${entry}`, async () => {
    await rejected(unpack(gzip(await makeTar(entries)), 'compressedtar'), entry, reason);
  });
}
for (const [name, entries, entry, reason] of hostile) {
  test(`zip: ${name} is rejected naming ${entry}`, async () => {
    await rejected(unpack(makeZip(entries as ZipEntry[]), 'zip'), entry, reason);
  });
}

test('zip: device entries (Unix mode bits) are rejected', async () => {
  await rejected(unpack(makeZip([ok, { name: 'null', type: 'character-device' }]), 'zip'), 'null', /character device/);
});

test('hard links inside the archive become copies; relative symlinks inside are kept', async () => {
  const source = await unpack(gzip(await makeTar([
    ok,
    { name: 'lib/', type: 'directory' },
    { name: 'lib/copy.js', type: 'link', linkname: 'handler.js' },
    { name: 'lib/link.js', type: 'symlink', linkname: '../handler.js' },
  ])), 'compressedtar');
  const copy = source.files.find((file) => file.path === 'lib/copy.js');
  assert.is(copy?.type, 'file');
  assert.is(copy?.content.toString(), 'module.exports = {}');
  assert.is(source.files.find((file) => file.path === 'lib/link.js')?.linkTarget, '../handler.js');
});

test('bomb: too many entries stops at the first entry past the limit', async () => {
  const entries = Array.from({ length: 30 }, (_, i) => ({ name: `f${String(i).padStart(2, '0')}.js`, content: 'x' }));
  await rejected(unpack(gzip(await makeTar(entries)), 'compressedtar', { maxEntries: 20 }), 'f20.js', /limit of 20 entries/);
  await rejected(unpack(makeZip(entries), 'zip', { maxEntries: 20 }), 'f20.js', /limit of 20 entries/);
});

test('bomb: one entry past the per-file limit, by its header, before it is unpacked', async () => {
  const entries = [ok, { name: 'big.bin', content: Buffer.alloc(200_000) }];
  await rejected(unpack(gzip(await makeTar(entries)), 'compressedtar', { maxEntryBytes: 100_000 }), 'big.bin', /200000 bytes unpacked, more than the limit of 100000/);
  await rejected(unpack(makeZip(entries), 'zip', { maxEntryBytes: 100_000 }), 'big.bin', /more than the limit of 100000/);
});

test('bomb: many entries together past the total limit', async () => {
  const entries = Array.from({ length: 10 }, (_, i) => ({ name: `part${i}.bin`, content: Buffer.alloc(30_000) }));
  await rejected(unpack(bzip2(await makeTar(entries)), 'compressedtar', { maxTotalBytes: 100_000 }), 'part3.bin', /limit of 100000 unpacked bytes/);
  await rejected(unpack(makeZip(entries), 'zip', { maxTotalBytes: 100_000 }), 'part3.bin', /limit of 100000 unpacked bytes/);
});

test('bomb: a zip whose directory understates the size cannot inflate past the claim', async () => {
  const zip = makeZip([{ name: 'liar.bin', content: Buffer.alloc(5_000_000), claimedSize: 100 }]);
  assert.ok(zip.length < 20_000);
  await rejected(unpack(zip, 'zip'), 'liar.bin', /more than the 100 bytes its header claims/);
});

test('bomb: highly compressed tar.gz, tar.bz2 and tar.xz stop at the decompression limit', async () => {
  const limits = { maxEntries: 10, maxEntryBytes: 1_000_000, maxTotalBytes: 1_000_000 };
  // Padding after the last entry: every entry is within the limits, the stream is not.
  const tar = Buffer.concat([await makeTar([ok]), Buffer.alloc(40 * 1024 * 1024)]);
  for (const [format, compress] of [['gzip', gzip], ['bzip2', bzip2], ['xz', xz]] as const) {
    const bomb = compress(tar);
    assert.ok(bomb.length < 100_000, `${format} bomb is small: ${bomb.length}`);
    await rejected(unpack(bomb, 'compressedtar', limits), 'handler.js', /decompressed bytes/);
  }
});

/** What the decoder hands over before it fails, and how it fails. */
function drain(chunks: Iterator<Buffer>): { bytes: Buffer; largest: number; error: unknown } {
  const got: Buffer[] = [];
  try {
    for (let next = chunks.next(); !next.done; next = chunks.next()) got.push(next.value);
  } catch (error) {
    return { bytes: Buffer.concat(got), largest: Math.max(...got.map((chunk) => chunk.length)), error };
  }
  return { bytes: Buffer.concat(got), largest: Math.max(...got.map((chunk) => chunk.length)), error: undefined };
}

test('bzip2 is decoded a block at a time: the first blocks come out before a later one is read, in chunks of at most 64 KiB', () => {
  // Random bytes do not compress: three blocks (900 kB, 900 kB, the rest), the last one corrupted.
  const data = randomBytes(2_000_000);
  const compressed = bzip2(data);
  const at = compressed.length - 2000;
  compressed[at] = compressed[at]! ^ 0xff;
  const first = bunzip(compressed, 10_000_000).next();
  assert.ok(!first.done && first.value.length > 0, 'the first chunk comes before the corrupt block is read');
  const { bytes, largest, error } = drain(bunzip(compressed, 10_000_000));
  assert.ok(bytes.length >= 1_700_000, `${bytes.length} bytes of the two good blocks`);
  assert.ok(data.subarray(0, bytes.length).equals(bytes));
  assert.ok(largest <= 64 * 1024, `largest chunk ${largest}`);
  assert.match(String((error as Error)?.message), /Data error|CRC/);
});

test('bzip2 past the limit: exactly the limit is handed over, then DecompressionLimitError; concatenated streams are read on', () => {
  const { bytes, error } = drain(bunzip(bzip2(Buffer.alloc(5_000_000)), 1_000_000));
  assert.is(bytes.length, 1_000_000);
  assert.instance(error, DecompressionLimitError);
  const both = drain(bunzip(Buffer.concat([bzip2(Buffer.from('one ')), bzip2(Buffer.from('two'))]), 100));
  assert.is(both.error, undefined);
  assert.is(both.bytes.toString(), 'one two');
});

test('modes are normalised: 0644 files, 0755 when any execute bit, 0755 directories', async () => {
  const source = await unpack(gzip(await makeTar([
    { name: 'secret.js', content: 'x', mode: 0o600 },
    { name: 'group-exec.sh', content: 'x', mode: 0o710 },
    { name: 'setuid', content: 'x', mode: 0o4755 },
    { name: 'open.js', content: 'x', mode: 0o777 },
    { name: 'private/', type: 'directory', mode: 0o700 },
  ])), 'compressedtar');
  assert.equal(source.files.map((file) => `${file.path}:${file.mode.toString(8)}`), ['group-exec.sh:755', 'open.js:755', 'private:755', 'secret.js:644', 'setuid:755']);
});

test.run();
