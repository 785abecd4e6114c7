// Outputs without a registry, checked with the real tools: a docker-archive that `docker load` takes
// and whose function then runs and answers over HTTP, and that `skopeo inspect docker-archive:` reads;
// an OCI layout that `umoci` unpacks and `skopeo` inspects and copies into the Docker Engine, where it
// runs too. The base layers come from the nodejs runtime image in a real registry, through a fault
// proxy that counts the requests: a second image on the same base downloads no layer. Same image,
// same bytes; a failure leaves no output and no temp file.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobCache } from '../../lib/image/blob-cache.ts';
import { ImageContentError } from '../../lib/image/local-image.ts';
import { OutputSpecError, parseOutputSpec } from '../../lib/image/output-spec.ts';
import { writeImageOutput, type OutputImage } from '../../lib/engine/write-output.ts';
import { RegistryClient } from '../../lib/registry/client.ts';
import type { AssembledImage } from '../../lib/engine/assemble.ts';
import { assembleTestImage } from '../support/assembled-image.ts';
import { docker, exec } from '../support/docker.ts';
import { imageScope, type ImageScope } from '../support/engine-images.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { fileTree, strays } from '../support/files.ts';
import { callFunctionImage } from '../support/function-container.ts';
import { startRegistry, type RegistryHandle } from '../support/registry.ts';
import { pushRuntimeImages, releaseRuntimeImages } from '../support/runtime-images.ts';

const test = suite('image outputs');
let dir = '';
let registry: RegistryHandle;
let proxy: FaultProxy;
let client: RegistryClient;
let scope: ImageScope;
let base: { repository: string; digest: string };
let cache: BlobCache;

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fib-outputs-'));
  scope = imageScope('outputs');
  registry = await startRegistry('anonymous');
  const { images } = await pushRuntimeImages(registry, { runtimes: ['nodejs'] });
  const nodejs = images.nodejs!;
  base = { repository: 'kubeless/nodejs', digest: nodejs.digest };
  proxy = await startFaultProxy(registry.url);
  client = new RegistryClient({ registry: proxy.host, retryDelayMs: 10 });
  cache = new BlobCache(join(dir, 'cache'));
});

test.after(async () => {
  await proxy?.stop();
  if (registry) await releaseRuntimeImages(registry);
  await registry?.stop();
  await scope?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/** A nodejs function image answering "<greeting> <body>". */
function functionImage(greeting: string): Promise<AssembledImage> {
  return assembleTestImage(client, `${proxy.host}/${base.repository}@${base.digest}`, {
    files: { 'handler.js': `module.exports = { hello: (event) => ${JSON.stringify(greeting)} + ' ' + event.data };\n` },
    env: { FUNC_HANDLER: 'hello', MOD_NAME: 'handler', FUNC_TIMEOUT: '180', FUNC_RUNTIME: 'nodejs24' },
    // Everything loaded from these outputs carries the scope's label, so the scope's cleanup removes it.
    labels: { [scope.label.split('=')[0]!]: scope.value },
  });
}

function write(spec: string, image: OutputImage, name: string) {
  return writeImageOutput(parseOutputSpec(spec, dir), image, { name, cache, client: () => client });
}

async function call(image: string, body: string): Promise<string> {
  const { status, text } = await callFunctionImage(image, body);
  assert.is(status, 200);
  return text;
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

test('docker-archive: docker load takes it, the function runs and answers, skopeo reads it', async () => {
  const image = await functionImage('hello from the archive,');
  const name = `kubeless.local/archive-fn:${randomBytes(6).toString('hex')}`;
  const before = proxy.requests.length;
  const written = await write('docker-archive:hello.tar', image, name);
  const layerGets = proxy.requests.slice(before).filter((r) => r.method === 'GET' && r.path.includes('/blobs/'));
  assert.ok(layerGets.length > 0 && written.bytes.downloaded > 0, 'the first output downloads the base layers');
  assert.is(written.configDigest, image.config.descriptor.digest);

  const loaded = await docker(['load', '-i', join(dir, 'hello.tar')]);
  assert.match(loaded, `Loaded image: ${name}`);
  try {
    assert.is((await docker(['image', 'inspect', '--format', '{{.Id}}', name])).trim(), written.configDigest, 'the image ID is the config digest');
    assert.is(await call(name, 'world'), 'hello from the archive, world');
  } finally {
    await exec('docker', ['rmi', name]);
  }

  const inspected = JSON.parse(await exec('skopeo', ['inspect', `docker-archive:${join(dir, 'hello.tar')}`]).then((r) => r.stdout || r.stderr)) as { Layers: string[]; Env: string[] };
  assert.is(inspected.Layers.length, image.layers.length);
  assert.ok(inspected.Env.includes('MOD_NAME=handler'), JSON.stringify(inspected.Env));
  assert.equal(strays(dir), []);
});

test('oci: umoci unpacks it, skopeo inspects it and copies it into the Docker Engine, where it runs', async () => {
  const image = await functionImage('hello from the layout,');
  const tag = randomBytes(6).toString('hex');
  const layout = join(dir, 'layout');
  const written = await write('oci:layout', image, `kubeless.local/layout-fn:${tag}`);
  assert.ok(existsSync(join(layout, 'oci-layout')));
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string; mediaType: string; annotations: Record<string, string> }[] };
  assert.is(index.manifests.length, 1);
  assert.is(index.manifests[0]!.digest, written.manifestDigest);
  assert.is(index.manifests[0]!.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.is(index.manifests[0]!.annotations['org.opencontainers.image.ref.name'], tag);

  const stat = await exec('umoci', ['stat', '--image', `${layout}:${tag}`]);
  assert.is(stat.code, 0, stat.stderr);
  const bundle = join(dir, 'bundle');
  const unpacked = await exec('umoci', ['unpack', '--rootless', '--image', `${layout}:${tag}`, bundle]);
  assert.is(unpacked.code, 0, unpacked.stderr);
  assert.match(readFileSync(join(bundle, 'rootfs', 'kubeless', 'handler.js'), 'utf8'), 'hello from the layout,');
  assert.ok(existsSync(join(bundle, 'rootfs', 'kubeless-runtime', 'kubeless.js')) && existsSync(join(bundle, 'rootfs', 'usr', 'local', 'bin', 'node')), 'the base layers are unpacked too');
  const runtimeConfig = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { process: { env: string[] } };
  assert.ok(runtimeConfig.process.env.includes('FUNC_HANDLER=hello'));

  const inspected = await exec('skopeo', ['inspect', `oci:${layout}`]);
  assert.is(inspected.code, 0, inspected.stderr);
  assert.is((JSON.parse(inspected.stdout) as { Layers: string[] }).Layers.length, image.layers.length);

  const name = `kubeless.local/layout-fn:${tag}`;
  const copied = await exec('skopeo', ['copy', `oci:${layout}`, `docker-daemon:${name}`]);
  assert.is(copied.code, 0, copied.stderr);
  try {
    assert.is(await call(name, 'world'), 'hello from the layout, world');
  } finally {
    await exec('docker', ['rmi', name]);
  }
  assert.equal(strays(dir), []);
});

test('oci: an OCI-family image keeps its manifest bytes, so its digest is the one a registry would hold', async () => {
  const image = await functionImage('oci family');
  const manifest = JSON.parse(image.manifest.bytes.toString('utf8')) as { config: { digest: string; size: number }; layers: { digest: string; size: number }[] };
  const oci = (d: { digest: string; size: number }, mediaType: string) => ({ mediaType, digest: d.digest, size: d.size });
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: oci(manifest.config, 'application/vnd.oci.image.config.v1+json'),
      layers: manifest.layers.map((l) => oci(l, 'application/vnd.oci.image.layer.v1.tar+gzip')),
    }),
  );
  const written = await write('oci:oci-family', { ...image, manifest: { ...image.manifest, bytes } }, 'kubeless.local/oci-family:1');
  assert.is(written.manifestDigest, `sha256:${createHash('sha256').update(bytes).digest('hex')}`);
  assert.ok(readFileSync(join(dir, 'oci-family', 'blobs', 'sha256', written.manifestDigest.slice(7))).equals(bytes));
  const stat = await exec('umoci', ['stat', '--image', `${join(dir, 'oci-family')}:1`]);
  assert.is(stat.code, 0, stat.stderr);
});

test('a second image on the same base downloads no layer: the cache has them', async () => {
  // The two tests above filled the cache; this image has a new code layer on the same base.
  const image = await functionImage('second');
  const before = proxy.requests.length;
  const written = await write('docker-archive:second.tar', image, 'kubeless.local/second:1');
  const blobGets = proxy.requests.slice(before).filter((r) => r.method === 'GET' && r.path.includes('/blobs/'));
  assert.equal(blobGets, [], 'no blob was fetched from the registry');
  assert.is(written.bytes.downloaded, 0);
  const baseBytes = image.layers.filter((l) => l.source.kind === 'registry').reduce((n, l) => n + l.descriptor.size, 0);
  assert.is(written.bytes.cached, baseBytes);
  assert.is(written.bytes.local, image.layers.at(-1)!.descriptor.size);
});

test('the same image gives the same bytes: archive and layout', async () => {
  const image = await functionImage('same');
  await write('docker-archive:same-1.tar', image, 'kubeless.local/same:1');
  await write('docker-archive:same-2.tar', image, 'kubeless.local/same:1');
  assert.is(sha256File(join(dir, 'same-1.tar')), sha256File(join(dir, 'same-2.tar')));
  await write('oci:same-1', image, 'kubeless.local/same:1');
  await write('oci:same-2', image, 'kubeless.local/same:1');
  assert.equal(fileTree(join(dir, 'same-1')), fileTree(join(dir, 'same-2')));
});

test('a layer whose bytes do not match leaves no output, keeps the previous one, and no temp file', async () => {
  const good = await functionImage('kept');
  await write('docker-archive:kept.tar', good, 'kubeless.local/kept:1');
  await write('oci:kept', good, 'kubeless.local/kept:1');
  const archiveBefore = sha256File(join(dir, 'kept.tar'));
  const layoutBefore = fileTree(join(dir, 'kept'));
  const bad: OutputImage = {
    ...good,
    layers: good.layers.map((l) => (l.source.kind === 'bytes' ? { ...l, source: { kind: 'bytes' as const, data: Buffer.from('not the layer') } } : l)),
  };
  for (const [spec, path] of [['docker-archive:kept.tar', 'kept.tar'], ['docker-archive:never.tar', 'never.tar'], ['oci:kept', 'kept'], ['oci:never', 'never']] as const) {
    try {
      await write(spec, bad, 'kubeless.local/kept:1');
      assert.unreachable(`${spec} should fail`);
    } catch (error) {
      assert.instance(error, ImageContentError, String(error));
    }
    if (path.startsWith('never')) assert.not.ok(existsSync(join(dir, path)), `${spec}: no output`);
  }
  assert.is(sha256File(join(dir, 'kept.tar')), archiveBefore, 'the previous archive is untouched');
  assert.equal(fileTree(join(dir, 'kept')), layoutBefore, 'the previous layout is untouched');
  assert.equal(strays(dir), []);
});

test('a cached base layer damaged on disk fails the write, is dropped from the cache, and the next write fetches it again', async () => {
  const image = await functionImage('damaged');
  const base = image.layers.find((l) => l.source.kind === 'registry')!.descriptor;
  const path = cache.path(base.digest);
  const bytes = readFileSync(path);
  const middle = bytes.length >> 1;
  bytes[middle] = (bytes[middle] ?? 0) ^ 0xff;
  writeFileSync(path, bytes);
  try {
    await write('docker-archive:damaged.tar', image, 'kubeless.local/damaged:1');
    assert.unreachable('the damaged layer is noticed');
  } catch (error) {
    assert.instance(error, ImageContentError, String(error));
    assert.match((error as Error).message, 'removed from the cache');
    assert.match((error as Error).message, base.digest);
  }
  assert.not.ok(existsSync(path), 'the damaged blob is gone');
  assert.not.ok(existsSync(join(dir, 'damaged.tar')));
  const again = await write('docker-archive:damaged.tar', image, 'kubeless.local/damaged:1');
  assert.is(again.bytes.downloaded, base.size, 'only that layer is downloaded again');
  assert.equal(strays(dir), []);
});

test('bad output specs and unusable paths are clear errors, checked before anything is written', async () => {
  const bad = (spec: string, text: string) => {
    try {
      parseOutputSpec(spec, dir);
      assert.unreachable(spec);
    } catch (error) {
      assert.instance(error, OutputSpecError);
      assert.is((error as OutputSpecError).code, 'E_OUTPUT_INVALID');
      assert.is((error as OutputSpecError).kind, 'user');
      assert.match((error as Error).message, text);
    }
  };
  bad('tar:x', 'oci:DIR');
  bad('x.tar', 'docker-archive:FILE');
  bad('oci:', 'give the directory');
  bad('docker-archive:', 'give the file');
  bad('oci:dir:ref', 'may not contain ":"');
  assert.equal(parseOutputSpec('oci:out/layout', '/work'), { format: 'oci', path: '/work/out/layout', spec: 'oci:out/layout' });

  const image = await functionImage('never');
  const refused = async (spec: string, text: string) => {
    try {
      await write(spec, image, 'kubeless.local/never:1');
      assert.unreachable(spec);
    } catch (error) {
      assert.instance(error, OutputSpecError, String(error));
      assert.match((error as Error).message, text);
    }
  };
  mkdirSync(join(dir, 'user-data'));
  writeFileSync(join(dir, 'user-data', 'notes.txt'), 'mine');
  await refused('oci:user-data', 'neither empty nor an OCI image layout');
  assert.equal(readdirSync(join(dir, 'user-data')), ['notes.txt'], "the user's files are untouched");
  await refused('docker-archive:user-data', 'is a directory');
  await refused('oci:missing-parent/layout', 'does not exist');
  assert.equal(strays(dir), []);
});

test.run();
