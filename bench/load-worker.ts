// The measured process of bench/load.ts: a controller's view of the library, compiled to JavaScript
// first (as the published package runs), so its memory is the library's and not that of Node's
// TypeScript stripping. It reads its input as JSON from BENCH_LOAD_INPUT and prints one JSON result.
import { Agent, request } from 'undici';
import { buildFunctionImage, type BuildResult } from '../lib/build.ts';
import { functionImageTag } from '../lib/image/identity.ts';
import { RegistryClient } from '../lib/registry/client.ts';
import { MANIFEST_ACCEPT } from '../lib/registry/manifest.ts';
import { closeRegistryConnections } from '../lib/registry/transport.ts';
import { parseRuntimeCatalog } from '../lib/runtime/catalog.ts';
import { parseFunction } from '../lib/function/parse.ts';

export interface LoadInput {
  checks: number;
  builds: number;
  concurrency: number;
  /** Anonymous registry for the checks: host:port and http://host:port. */
  checkRegistry: { host: string; url: string };
  /** Where the builds push, their runtime catalog and credentials (the rig's). */
  buildRegistry: string;
  buildCatalog: unknown;
  dockerConfig: string;
  nonce: string;
}

export interface LoadOutput {
  rssAtStartMb: number;
  checks: { ours: number[]; floor: number[]; perConnection: number[]; oursWallMs: number; floorWallMs: number; peakRssMb: number };
  builds?: { aloneMs: number; rssAfterAloneMb: number; wallMs: number; builtSame: number; peakRssMb: number };
}

const peakRssMb = () => process.resourceUsage().maxRSS / 1024;

/** A small Function, distinct per name: what a controller sees many of. */
function loadFunction(name: string): object {
  return {
    apiVersion: 'kubeless.io/v1beta1',
    kind: 'Function',
    metadata: { name, namespace: 'default' },
    spec: { handler: 'handler.hello', runtime: 'nodejs24', function: `module.exports = { hello: () => '${name}' }` },
  };
}

async function pooled<T>(items: T[], limit: number, work: (item: T) => Promise<unknown>): Promise<number> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
  return performance.now() - started;
}

async function sequential<T>(items: T[], work: (item: T) => Promise<unknown>): Promise<number[]> {
  const latencies: number[] = [];
  for (const item of items) {
    const started = performance.now();
    await work(item);
    latencies.push(performance.now() - started);
  }
  return latencies;
}

async function checks(input: LoadInput): Promise<LoadOutput['checks']> {
  // Pinned by digest: a check makes no request but its HEAD.
  const catalog = parseRuntimeCatalog([
    { ID: 'nodejs', depName: 'package.json', fileNameSuffix: '.js', versions: [{ name: 'node24', version: '24', images: [{ phase: 'runtime', image: `127.0.0.1:9/runtimes/node@sha256:${'a'.repeat(64)}` }] }] },
  ]);
  const functions = Array.from({ length: input.checks }, (_, i) => loadFunction(`load-${i}`));
  const manifests: string[] = [];
  // One small image, tagged with every Function's tag: the checks find them all.
  const client = new RegistryClient({ registry: input.checkRegistry.host });
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const configBlob = await client.pushBlob('load/shared', config);
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: { mediaType: 'application/vnd.docker.container.image.v1+json', size: config.length, digest: configBlob.digest },
    layers: [],
  };
  for (const [i, fn] of functions.entries()) {
    const tag = await functionImageTag(fn, { catalog });
    await client.mountBlob(`load/load-${i}`, configBlob.digest, 'load/shared');
    await client.putManifest(`load/load-${i}`, tag, manifest);
    manifests.push(`${input.checkRegistry.url}/v2/load/load-${i}/manifests/${tag}`);
  }
  await closeRegistryConnections();

  const check = async (fn: object) => {
    const result = await buildFunctionImage(parseFunction(fn), { registry: `${input.checkRegistry.host}/load`, catalog });
    if (!result.cached) throw new Error(`${result.function} was not found as built`);
  };
  const head = (agent: Agent) => async (url: string) => {
    const response = await request(url, { method: 'HEAD', headers: { accept: MANIFEST_ACCEPT }, dispatcher: agent, reset: false });
    await response.body.dump();
    if (response.statusCode !== 200) throw new Error(`HEAD ${url}: ${response.statusCode}`);
  };
  const kept = new Agent({ keepAliveTimeout: 10_000 });
  const fresh = async (url: string) => {
    const agent = new Agent();
    try {
      await head(agent)(url);
    } finally {
      await agent.close();
    }
  };
  // Warm-up (JIT, first connections), then steady state.
  await sequential(functions.slice(0, 50), check);
  await sequential(manifests.slice(0, 50), head(kept));
  const ours = await sequential(functions, check);
  const oursWallMs = await pooled(functions, input.concurrency, check);
  // Before the baselines: a new connection per request costs memory that is not the library's.
  const rss = peakRssMb();
  const floor = await sequential(manifests, head(kept));
  const floorWallMs = await pooled(manifests, input.concurrency, head(kept));
  const perConnection = await sequential(manifests, fresh);
  await kept.close();
  await closeRegistryConnections();
  return { ours, floor, perConnection, oursWallMs, floorWallMs, peakRssMb: rss };
}

async function builds(input: LoadInput): Promise<NonNullable<LoadOutput['builds']>> {
  const options = { registry: input.buildRegistry, catalog: input.buildCatalog as object, dockerConfig: input.dockerConfig };
  // Baseline: one build alone, after a first one (base layers in the daemon, as for every build after the first).
  await buildFunctionImage(parseFunction(loadFunction(`load-warm-${input.nonce}`)), options);
  const aloneStarted = performance.now();
  await buildFunctionImage(parseFunction(loadFunction(`load-alone-${input.nonce}`)), options);
  const aloneMs = performance.now() - aloneStarted;
  const rssAfterAloneMb = peakRssMb();

  const distinct = Array.from({ length: input.builds }, (_, i) => loadFunction(`load-${input.nonce}-${i}`));
  const same = loadFunction(`load-same-${input.nonce}`);
  const started = performance.now();
  const results: BuildResult[] = await Promise.all([...distinct.map((fn) => buildFunctionImage(parseFunction(fn), options)), ...distinct.map(() => buildFunctionImage(parseFunction(same), options))]);
  const wallMs = performance.now() - started;
  if (results.slice(0, input.builds).some((r) => !r.pushed)) throw new Error('a distinct function was not built');
  const sameResults = results.slice(input.builds);
  if (new Set(sameResults.map((r) => r.reference)).size !== 1) throw new Error('the calls for the same function got different images');
  await closeRegistryConnections();
  return { aloneMs, rssAfterAloneMb, wallMs, builtSame: sameResults.filter((r) => r.pushed).length, peakRssMb: peakRssMb() };
}

// Builds first, so that their peak RSS is their own and not the checks' setup (1 000 manifests pushed).
const input = JSON.parse(process.env.BENCH_LOAD_INPUT ?? '') as LoadInput;
const rssAtStartMb = peakRssMb();
const built = input.builds > 0 ? await builds(input) : undefined;
const output: LoadOutput = { rssAtStartMb, ...(built === undefined ? {} : { builds: built }), checks: await checks(input) };
process.stdout.write(`${JSON.stringify(output)}\n`);
