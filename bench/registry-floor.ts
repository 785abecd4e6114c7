// The floor of scenario (d): the fewest registry requests that can publish a code-only change of a
// function with recorded deps, sent with undici directly, with no parsing, planning, layer making or
// error handling: resolve the runtime tag (when the runtime image is named by one), miss the
// function's tag, read the deps record while two upload sessions open, put the code layer and the
// config, put the manifest. What the registry does
// for those requests (mostly writing the blobs and the manifest to its storage) is the part of a
// build no client can save; bench/run.ts reports the registry engine's (d) time against it.
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import { sha256Digest } from '../lib/registry/manifest.ts';

export interface FloorInput {
  /** The runtime image's registry origin, repository, tag and Basic credentials (user:password), when it is named by tag. */
  source?: { origin: string; repository: string; tag: string; basic: string };
  /** The target registry's origin and the function's repository. */
  target: { origin: string; repository: string };
  /** The deps record's tag in that repository. */
  depsTag: string;
  /** An image manifest of the function (base layers, deps layer, code layer last): the shape to push. */
  manifest: { bytes: Buffer; mediaType: string };
}

const agent = new Agent({ keepAliveTimeout: 10_000, allowH2: false });

async function send(method: 'HEAD' | 'GET' | 'POST' | 'PUT', url: string, headers: Record<string, string> = {}, body?: Buffer): Promise<{ status: number; location: string | undefined }> {
  const response = await request(url, { method, headers, body: body ?? (method === 'POST' || method === 'PUT' ? '' : undefined), dispatcher: agent, ...(method === 'HEAD' ? { reset: false } : {}) });
  await response.body.dump();
  const location = response.headers.location;
  return { status: response.statusCode, location: typeof location === 'string' ? new URL(location, url).toString() : undefined };
}

/** One floor build with a code layer and a config of the template's sizes; returns its milliseconds. */
export async function floorBuild(input: FloorInput): Promise<number> {
  const template = JSON.parse(input.manifest.bytes.toString('utf8')) as { config: { size: number; digest: string }; layers: { size: number; digest: string }[] };
  const code = randomBytes(template.layers.at(-1)!.size);
  const config = randomBytes(template.config.size);
  const manifest = Buffer.from(JSON.stringify({
    ...template,
    config: { ...template.config, digest: sha256Digest(config) },
    layers: [...template.layers.slice(0, -1), { ...template.layers.at(-1)!, digest: sha256Digest(code) }],
  }));
  const tag = `floor-${randomBytes(6).toString('hex')}`;
  const repo = `${input.target.origin}/v2/${input.target.repository}`;
  const accept = { accept: input.manifest.mediaType };

  const started = performance.now();
  const { source } = input;
  if (source) await send('HEAD', `${source.origin}/v2/${source.repository}/manifests/${source.tag}`, { ...accept, authorization: `Basic ${Buffer.from(source.basic).toString('base64')}` });
  if ((await send('HEAD', `${repo}/manifests/${tag}`, accept)).status !== 404) throw new Error('floor: the tag exists');
  const sessions = [send('POST', `${repo}/blobs/uploads/`), send('POST', `${repo}/blobs/uploads/`)];
  if ((await send('GET', `${repo}/manifests/${input.depsTag}`, { accept: 'application/vnd.oci.image.manifest.v1+json' })).status !== 200) throw new Error('floor: no deps record');
  const put = async (session: Promise<{ location: string | undefined }>, blob: Buffer) => {
    const url = new URL((await session).location!);
    url.searchParams.set('digest', sha256Digest(blob));
    if ((await send('PUT', url.toString(), { 'content-type': 'application/octet-stream' }, blob)).status !== 201) throw new Error('floor: blob upload refused');
  };
  await Promise.all([put(sessions[0]!, code), put(sessions[1]!, config)]);
  if ((await send('PUT', `${repo}/manifests/${tag}`, { 'content-type': input.manifest.mediaType }, manifest)).status !== 201) throw new Error('floor: manifest refused');
  return performance.now() - started;
}

export async function closeFloor(): Promise<void> {
  await agent.close();
}
