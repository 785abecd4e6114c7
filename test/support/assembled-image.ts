// A function image assembled the way the registry engine assembles one, made by hand for the output
// tests: the runtime image's manifest and config read from a registry, one code layer (a gzipped tar
// of /kubeless) appended, the config's env, labels, diff_ids and history extended. Base layers stay
// in the registry (source 'registry'); only the new layer and the config are bytes.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import type { RegistryClient } from '../../lib/registry/client.ts';
import type { Descriptor } from '../../lib/registry/manifest.ts';
import type { OutputImage } from '../../lib/image/write-output.ts';

const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

async function tarOf(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  const header = { uid: 1000, gid: 1000, mtime: new Date(0) };
  pack.entry({ ...header, name: 'kubeless/', type: 'directory', mode: 0o755 });
  for (const [name, content] of Object.entries(files).sort()) pack.entry({ ...header, name: `kubeless/${name}`, mode: 0o644 }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export interface TestFunctionImage extends OutputImage {
  /** The new layer's digest. */
  codeLayer: string;
}

/**
 * `repository@digest` on `registry` (read through `client`) plus a layer holding `files` under
 * /kubeless, with `env` and `labels` set in the config.
 */
export async function assembleTestImage(
  client: RegistryClient,
  registry: string,
  repository: string,
  digest: string,
  options: { files: Record<string, string>; env: Record<string, string>; labels?: Record<string, string> },
): Promise<TestFunctionImage> {
  const base = await client.getManifest(repository, digest);
  const manifest = base.json as { mediaType: string; config: Descriptor; layers: Descriptor[] };
  const config = JSON.parse((await client.getBlob(repository, manifest.config.digest)).toString('utf8')) as {
    config: { Env?: string[]; Labels?: Record<string, string> };
    rootfs: { diff_ids: string[] };
    history?: unknown[];
  };
  const layerTar = await tarOf(options.files);
  const layer = gzipSync(layerTar);
  const names = new Set(Object.keys(options.env));
  config.config.Env = [...(config.config.Env ?? []).filter((e) => !names.has(e.split('=')[0] ?? '')), ...Object.entries(options.env).map(([k, v]) => `${k}=${v}`)];
  config.config.Labels = { ...config.config.Labels, ...options.labels };
  config.rootfs.diff_ids.push(sha256(layerTar));
  config.history = [...(config.history ?? []), { created: '1970-01-01T00:00:00Z', created_by: 'test: code /kubeless' }];
  const configBytes = Buffer.from(JSON.stringify(config));
  const layerMediaType = manifest.layers[0]?.mediaType ?? 'application/vnd.docker.image.rootfs.diff.tar.gzip';
  const codeDescriptor = { mediaType: layerMediaType, digest: sha256(layer), size: layer.length };
  const configDescriptor = { mediaType: manifest.config.mediaType, digest: sha256(configBytes), size: configBytes.length };
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: manifest.mediaType, config: configDescriptor, layers: [...manifest.layers, codeDescriptor] }));
  return {
    manifest: { bytes },
    config: { descriptor: configDescriptor, source: { kind: 'bytes', data: configBytes } },
    layers: [
      ...manifest.layers.map((descriptor) => ({ descriptor, source: { kind: 'registry' as const, registry, repository } })),
      { descriptor: codeDescriptor, source: { kind: 'bytes' as const, data: layer } },
    ],
    codeLayer: codeDescriptor.digest,
  };
}
