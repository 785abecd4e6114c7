// A function image assembled by the registry engine's own steps, for the output writer tests: the
// runtime image read by digest (manifest and config only), one code layer holding `files` under
// /kubeless appended, `env` and `labels` set. Base layers stay in the registry (source 'registry');
// only the new layer and the config are bytes.
import { assembleImage, memoryLayer, type AssembledImage } from '../../lib/engine/assemble.ts';
import { readBaseImages } from '../../lib/engine/base.ts';
import { buildLayer } from '../../lib/engine/layer.ts';
import type { RegistryClient } from '../../lib/registry/client.ts';

/** `image` (host/repo@sha256:..., read through `client`) plus a layer holding `files` under /kubeless. */
export async function assembleTestImage(
  client: RegistryClient,
  image: string,
  options: { files: Record<string, string>; env: Record<string, string>; labels?: Record<string, string> },
): Promise<AssembledImage> {
  const { images } = await readBaseImages(client, image, 'linux/amd64');
  const layer = await buildLayer(
    Object.entries(options.files).map(([name, content]) => ({ name: `kubeless/${name}`, type: 'file' as const, mode: 0o644, uid: 1000, gid: 1000, content: Buffer.from(content) })),
  );
  return assembleImage(images[0]!, [memoryLayer(layer, 'test: code /kubeless')], { env: options.env, labels: options.labels ?? {} });
}
