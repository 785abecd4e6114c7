// npm run bench: function-image-builder against the plain docker CLI on the same machine, in the
// same run, on the same registry and runtime images. The baseline is what a developer writes by
// hand: a two-stage Dockerfile (deps installed before the code is copied, so the CLI gets the same
// layer cache), `docker build` then `docker push`, every time. Scenarios, each RUNS times with the
// two sides interleaved, medians reported:
//   (a) redeploy of an unchanged function
//   (b) a code-only change of a function with dependencies
//   (c) a fresh function (new deps, nothing cached but the base images)
//   (d) (b) with the registry engine: the deps layer is found by content, only the code layer moves
//   (e) a fresh function without deps, registry engine against docker build + push
// The runtime catalog names its images by digest, as Kubeless's runtime-images does; (d) is measured
// once more with the runtime image by tag, which costs a build one more request (its resolution).
// For (d) and (e) the bytes the registry engine uploaded are reported too, and (d) against its floor:
// the fewest requests that publish it, sent with undici directly (bench/registry-floor.ts).
// Not part of `npm test`: it takes a few minutes and measures rather than checks.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { buildFunctionImage, type BuildTimings } from '../lib/build.ts';
import { parseReference } from '../lib/image/reference.ts';
import { docker, exec } from '../test/support/docker.ts';
import { functionObject, startPipelineRig, type PipelineRig } from '../test/support/pipeline.ts';
import { dockerClientConfig } from '../test/support/registry.ts';
import { startFaultProxy } from '../test/support/fault-proxy.ts';
import { closeFloor, floorBuild, type FloorInput } from './registry-floor.ts';
import { parseFunction } from '../lib/function/parse.ts';
import { registryDigestResolver } from '../lib/image/resolve-digest.ts';
import { parseDockerConfig } from '../lib/registry/credentials.ts';
import type { RuntimeCatalogEntry } from '../test/support/runtime-images.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'functions', 'runtimes', 'nodejs-deps');
const HANDLER = readFileSync(join(FIXTURES, 'handler.js'), 'utf8');
const PACKAGE = JSON.parse(readFileSync(join(FIXTURES, 'package.json'), 'utf8')) as Record<string, unknown>;
const NODEPS_HANDLER = readFileSync(join(FIXTURES, '..', 'nodejs', 'handler.js'), 'utf8');

interface Sample {
  ours: number[];
  cli: number[];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

function packageJson(nonce: string): string {
  return JSON.stringify({ ...PACKAGE, description: `bench ${nonce}` }, null, 2);
}

function code(nonce: string): string {
  return `${HANDLER}\n// ${nonce}\n`;
}

/** The hand-written equivalent of the generated image, for `docker build`. */
function handWrittenDockerfile(catalog: RuntimeCatalogEntry[]): string {
  const node = catalog.find((runtime) => runtime.ID === 'nodejs')!.versions[0]!;
  const install = node.images.find((image) => image.phase === 'installation')!;
  const runtime = node.images.find((image) => image.phase === 'runtime')!;
  return [
    `FROM ${install.image} AS deps`,
    'COPY --chown=1000:1000 package.json /kubeless/package.json',
    'WORKDIR /kubeless',
    'ENV KUBELESS_INSTALL_VOLUME=/kubeless KUBELESS_DEPS_FILE=/kubeless/package.json',
    `RUN ${install.command}`,
    `FROM ${runtime.image}`,
    'COPY --chown=1000:1000 --from=deps /kubeless /kubeless',
    'COPY --chown=1000:1000 handler.js /kubeless/handler.js',
    'ENV NODE_PATH=/kubeless/node_modules FUNC_HANDLER=hello MOD_NAME=handler FUNC_TIMEOUT=180 FUNC_RUNTIME=nodejs24 FUNC_MEMORY_LIMIT=0 FUNC_PORT=8080 KUBELESS_INSTALL_VOLUME=/kubeless',
    '',
  ].join('\n');
}

/** The hand-written image of a function without deps: the runtime image, the code, the env. */
function handWrittenNoDepsDockerfile(catalog: RuntimeCatalogEntry[]): string {
  const runtime = catalog.find((r) => r.ID === 'nodejs')!.versions[0]!.images.find((image) => image.phase === 'runtime')!;
  return [
    `FROM ${runtime.image}`,
    'COPY --chown=1000:1000 handler.js /kubeless/handler.js',
    'ENV NODE_PATH=/kubeless/node_modules FUNC_HANDLER=text MOD_NAME=handler FUNC_TIMEOUT=180 FUNC_RUNTIME=nodejs24 FUNC_MEMORY_LIMIT=0 FUNC_PORT=8080 KUBELESS_INSTALL_VOLUME=/kubeless',
    '',
  ].join('\n');
}

/** The rig's catalog with every image by digest (the rig names runtime images by tag). */
async function pinnedCatalog(rig: PipelineRig): Promise<RuntimeCatalogEntry[]> {
  const pin = registryDigestResolver({ dockerConfig: parseDockerConfig(rig.dockerConfigJson) });
  const pinned = structuredClone(rig.catalog);
  for (const image of pinned.flatMap((runtime) => runtime.versions.flatMap((version) => version.images))) image.image = await pin(image.image);
  return pinned;
}

async function main(): Promise<void> {
  const loadAtStart = loadavg();
  const rig = await startPipelineRig('bench', ['anonymous']);
  const work = mkdtempSync(join(tmpdir(), 'fib-bench-'));
  const sourceConfig = dockerClientConfig(rig.source);
  const registry = rig.targets.anonymous!.host;
  const catalog = await pinnedCatalog(rig);
  const options = { registry: `${registry}/bench`, catalog, dockerConfig: rig.dockerConfigJson };
  const dockerfile = handWrittenDockerfile(catalog);
  const proxy = await startFaultProxy(rig.targets.anonymous!.url);
  const cliEnv = { ...process.env, DOCKER_BUILDKIT: '0' };

  const cliBuildPush = async (name: string, tag: string, handler: string, deps: string | undefined) => {
    const dir = join(work, `${name}-${tag}`);
    rmSync(dir, { recursive: true, force: true });
    await exec('mkdir', ['-p', dir]);
    writeFileSync(join(dir, 'Dockerfile'), deps === undefined ? handWrittenNoDepsDockerfile(catalog) : dockerfile);
    writeFileSync(join(dir, 'handler.js'), handler);
    if (deps !== undefined) writeFileSync(join(dir, 'package.json'), deps);
    const image = `${registry}/bench-cli/${name}:${tag}`;
    await docker(['--config', sourceConfig.dir, 'build', '-q', '-t', image, dir], { env: cliEnv });
    await docker(['--config', sourceConfig.dir, 'push', image]);
  };
  const ours = (name: string, handler: string, deps: string) =>
    buildFunctionImage(parseFunction(functionObject(name, { handler: 'handler.hello', runtime: 'nodejs24', function: handler, deps })), options);

  const viaRegistry = async (name: string, handler: string, deps: string | undefined, runtimeCatalog = catalog) => {
    const spec = deps === undefined ? { handler: 'handler.text', runtime: 'nodejs24', function: handler } : { handler: 'handler.hello', runtime: 'nodejs24', function: handler, deps };
    const result = await buildFunctionImage(parseFunction(functionObject(name, spec)), { ...options, catalog: runtimeCatalog, registry: `${registry}/bench-registry`, engine: 'registry' });
    if (result.cached || !result.bytes) throw new Error(`${name} was not built by the registry engine`);
    return { ...result, bytes: result.bytes };
  };

  /** What the floor of (d) needs, read from the target registry once (d) was built. */
  const floorInput = async (digest: string): Promise<FloorInput> => {
    const target = rig.targets.anonymous!.url;
    const tags = ((await (await fetch(`${target}/v2/bench-registry/bench-app/tags/list`)).json()) as { tags: string[] }).tags;
    const accept = 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json';
    const response = await fetch(`${target}/v2/bench-registry/bench-app/manifests/${digest}`, { headers: { accept } });
    return {
      target: { origin: target, repository: 'bench-registry/bench-app' },
      depsTag: tags.find((tag) => tag.startsWith('deps-'))!,
      manifest: { bytes: Buffer.from(await response.arrayBuffer()), mediaType: response.headers.get('content-type')! },
    };
  };

  // With the runtime image named by tag (rig.catalog), the floor resolves that tag first.
  const runtime = parseReference(rig.catalog.find((r) => r.ID === 'nodejs')!.versions[0]!.images.find((image) => image.phase === 'runtime')!.image);
  const tagSource: FloorInput['source'] = { origin: rig.source.url, repository: runtime.repository, tag: runtime.tag ?? 'latest', basic: `${rig.source.username}:${rig.source.password}` };

  const stages: BuildTimings[] = [];
  const samples: Record<'a' | 'b' | 'c' | 'd' | 'dTag' | 'e', Sample> = {
    a: { ours: [], cli: [] },
    b: { ours: [], cli: [] },
    c: { ours: [], cli: [] },
    d: { ours: [], cli: [] },
    dTag: { ours: [], cli: [] },
    e: { ours: [], cli: [] },
  };
  const uploaded: Record<'d' | 'e', number[]> = { d: [], e: [] };
  const floor: Record<'d' | 'dTag', number[]> = { d: [], dTag: [] };
  let redeployRequests = 0;
  try {
    // The function that is redeployed and changed: built once by both sides first (not measured).
    const deps = packageJson('steady');
    let handler = code('initial');
    await ours('bench-app', handler, deps);
    await cliBuildPush('bench-app', 'v0', handler, deps);
    // The registry engine's copy: installs once here and records the deps layer.
    await viaRegistry('bench-app', handler, deps);

    for (let run = 1; run <= RUNS; run++) {
      const nonce = randomBytes(4).toString('hex');
      // (c) fresh: a new function with deps no build has seen.
      const freshDeps = packageJson(`fresh ${nonce}`);
      const freshCode = code(`fresh ${nonce}`);
      samples.c.ours.push(await timed(() => ours(`bench-fresh-${nonce}`, freshCode, freshDeps)));
      samples.c.cli.push(await timed(() => cliBuildPush(`bench-fresh-${nonce}`, 'v1', freshCode, freshDeps)));

      // (b) code-only change of the function with deps.
      handler = code(`change ${run} ${nonce}`);
      samples.b.ours.push(await timed(async () => stages.push((await ours('bench-app', handler, deps)).timings)));
      samples.b.cli.push(await timed(() => cliBuildPush('bench-app', `v${run}`, handler, deps)));

      // (a) redeploy of that unchanged function.
      samples.a.ours.push(await timed(async () => {
        const result = await ours('bench-app', handler, deps);
        if (!result.cached) throw new Error('an unchanged function was rebuilt');
      }));
      samples.a.cli.push(await timed(() => cliBuildPush('bench-app', `v${run}`, handler, deps)));

      // (d) the same code-only change with the registry engine (the CLI side as in (b)).
      const registryHandler = code(`registry change ${run} ${nonce}`);
      let changed = '';
      samples.d.ours.push(await timed(async () => {
        const result = await viaRegistry('bench-app', registryHandler, deps);
        uploaded.d.push(result.bytes.uploaded);
        changed = result.digest;
      }));
      // Both floors push that same manifest's shape, so it and the deps tag are read once.
      const floorOf = await floorInput(changed);
      floor.d.push(await floorBuild(floorOf));
      samples.d.cli.push(await timed(() => cliBuildPush('bench-app', `d${run}`, registryHandler, deps)));
      // (d) again with the runtime image by tag (against the same CLI sample: docker build reads the
      // runtime image from the daemon however it is named).
      const tagHandler = code(`registry tag change ${run} ${nonce}`);
      samples.dTag.ours.push(await timed(() => viaRegistry('bench-app', tagHandler, deps, rig.catalog)));
      samples.dTag.cli.push(samples.d.cli.at(-1)!);
      floor.dTag.push(await floorBuild({ ...floorOf, source: tagSource }));

      // (e) a fresh function without deps.
      const noDeps = `${NODEPS_HANDLER}\n// ${nonce}\n`;
      samples.e.ours.push(await timed(async () => uploaded.e.push((await viaRegistry(`bench-nodeps-${nonce}`, noDeps, undefined)).bytes.uploaded)));
      samples.e.cli.push(await timed(() => cliBuildPush(`bench-nodeps-${nonce}`, 'v1', noDeps, undefined)));

      // An unchanged redeploy with the registry engine is still one request (the HEAD of its tag),
      // counted by a proxy in front of the same registry.
      const before = proxy.requests.length;
      const again = await buildFunctionImage(parseFunction(functionObject('bench-app', { handler: 'handler.hello', runtime: 'nodejs24', function: registryHandler, deps })), {
        ...options,
        registry: `${proxy.host}/bench-registry`,
        engine: 'registry',
      });
      if (!again.cached) throw new Error('an unchanged function was rebuilt by the registry engine');
      redeployRequests = Math.max(redeployRequests, proxy.requests.length - before);
      process.stderr.write(`run ${run}/${RUNS} done\n`);
    }
  } finally {
    sourceConfig.cleanup();
    await proxy.stop();
    await closeFloor();
    rmSync(work, { recursive: true, force: true });
    await rig.stop();
  }

  const engine = (await docker(['version', '--format', '{{.Server.Version}}'])).trim();
  const machine = `${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Docker Engine ${engine}, Node ${process.versions.node}`;
  const rows: [string, Sample][] = [
    ['(a) redeploy, unchanged function', samples.a],
    ['(b) code-only change, function with deps', samples.b],
    ['(c) fresh function with deps', samples.c],
    ['(d) code-only change, function with deps, registry engine', samples.d],
    ['(d) with the runtime image by tag', samples.dTag],
    ['(e) fresh function without deps, registry engine', samples.e],
  ];
  const seconds = (ms: number) => `${(ms / 1000).toFixed(ms < 1000 ? 3 : 2)} s`;
  const lines = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine}; median of ${RUNS} runs each, loopback registry.`,
    '',
    '| scenario | function-image-builder | docker build + docker push | ratio (docker CLI / builder) |',
    '|---|---:|---:|---:|',
    ...rows.map(([name, sample]) => {
      const ours = median(sample.ours);
      const cli = median(sample.cli);
      return `| ${name} | ${seconds(ours)} | ${seconds(cli)} | ${(cli / ours).toFixed(1)}× |`;
    }),
  ];
  const stage = (key: keyof BuildTimings) => seconds(median(stages.map((t) => t[key])));
  lines.push('', `(b) by stage, medians: resolve ${stage('resolveMs')}, registry check ${stage('checkMs')}, build ${stage('buildMs')}, push ${stage('pushMs')}.`);
  const kib = (values: number[]) => `${(median(values) / 1024).toFixed(1)} KiB`;
  lines.push(`Registry engine, bytes uploaded (median): (d) ${kib(uploaded.d)}, (e) ${kib(uploaded.e)}; unchanged redeploy: at most ${redeployRequests} registry request(s).`);
  const againstFloor = (name: string, sample: Sample, floorMs: number[]) =>
    `${name} ${seconds(median(floorMs))}, the registry engine ${(median(sample.ours) / median(floorMs)).toFixed(1)}× that, the docker CLI ${(median(sample.cli) / median(floorMs)).toFixed(1)}×`;
  lines.push(`(d) floor, the same requests sent with undici directly (bench/registry-floor.ts): ${againstFloor('by digest', samples.d, floor.d)}; ${againstFloor('by tag', samples.dTag, floor.dTag)}.`);
  const load = (values: number[]) => values.map((l) => l.toFixed(2)).join(', ');
  lines.push(`Load average (1, 5, 15 min): ${load(loadAtStart)} at the start, ${load(loadavg())} at the end (2 cores, shared).`);
  console.log(lines.join('\n'));
}

await main();
