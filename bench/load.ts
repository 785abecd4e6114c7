// npm run bench:load: what a controller that reconciles every Function on every resync costs. The
// measured process (bench/load-worker.ts, compiled to JavaScript as the package ships) does, in one
// process, against baselines measured in the same run:
//   checks  1 000 cached checks of distinct Functions (buildFunctionImage finds each image), one after
//           another and 50 at a time; baselines: the bare HEAD request over one kept-alive connection
//           (the floor) and over a new connection per request (what each check paid before pooling).
//   builds  50 distinct small functions and 50 calls for one same function, all at once, on the Docker
//           Engine; the same function must be built once. Baseline: one such build alone.
// Peak RSS is the worker's high-water mark (getrusage maxrss): at start, after the builds (which run
// first), after the checks. This process runs the rig (registries, runtime images) and prints the tables for README.md and docs/performance.md.
// BENCH_LOAD_CHECKS and BENCH_LOAD_BUILDS scale the two parts down on a busy machine.
import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { docker, exec } from '../test/support/docker.ts';
import { startPipelineRig } from '../test/support/pipeline.ts';
import { startRegistry } from '../test/support/registry.ts';
import type { LoadInput, LoadOutput } from './load-worker.ts';

const ROOT = join(import.meta.dirname, '..');
const CHECKS = Number(process.env.BENCH_LOAD_CHECKS ?? 1000);
const BUILDS = Number(process.env.BENCH_LOAD_BUILDS ?? 50);
const CONCURRENCY = 50;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const ms = (value: number) => `${value < 10 ? value.toFixed(2) : value.toFixed(0)} ms`;
const mb = (value: number) => `${value.toFixed(0)} MB`;
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

async function runWorker(input: LoadInput): Promise<LoadOutput> {
  const compiled = await exec(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'bench', 'tsconfig.load.json')], { timeoutMs: 300_000 });
  if (compiled.code !== 0) throw new Error(`compiling the load worker failed: ${compiled.stdout}${compiled.stderr}`);
  const worker = spawn(process.execPath, [join(ROOT, 'dist', 'bench-load', 'bench', 'load-worker.js')], {
    env: { ...process.env, BENCH_LOAD_INPUT: JSON.stringify(input) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  worker.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => worker.on('close', resolve));
  if (code !== 0) throw new Error(`the load worker exited ${code}`);
  return JSON.parse(stdout) as LoadOutput;
}

function report(output: LoadOutput, machine: string): string {
  const { checks, builds } = output;
  const median = (values: number[]) => percentile(values, 50);
  const perSecond = (wallMs: number) => ((CHECKS * 1000) / wallMs).toFixed(0);
  const row = (name: string, latencies: number[]) =>
    `| ${name} | ${ms(median(latencies))} | ${ms(percentile(latencies, 95))} | ${(sum(latencies) / 1000).toFixed(2)} s | ${perSecond(sum(latencies))} | ${(median(latencies) / median(checks.floor)).toFixed(1)}× |`;
  const lines = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine}; loopback registries; the worker compiled to JavaScript.`,
    '',
    `**Cached checks**: ${CHECKS} distinct Functions whose images exist, after 50 for warm-up.`,
    '',
    '| | median | p95 | wall time | calls/s | median / floor |',
    '|---|---:|---:|---:|---:|---:|',
    row('`buildFunctionImage`, one at a time', checks.ours),
    `| \`buildFunctionImage\`, ${CONCURRENCY} at a time | | | ${(checks.oursWallMs / 1000).toFixed(2)} s | ${perSecond(checks.oursWallMs)} | |`,
    row('floor: bare HEAD, one kept-alive connection', checks.floor),
    `| floor, ${CONCURRENCY} at a time | | | ${(checks.floorWallMs / 1000).toFixed(2)} s | ${perSecond(checks.floorWallMs)} | |`,
    row('bare HEAD, a new connection each (as before pooling)', checks.perConnection),
    '',
    `Peak RSS of the process: ${mb(output.rssAtStartMb)} once loaded, ${mb(checks.peakRssMb)} after the checks${builds ? ' (which ran after the builds)' : ''}.`,
  ];
  if (builds) {
    const images = BUILDS + 1;
    lines.push(
      '',
      `**Concurrent builds** on the Docker Engine: ${BUILDS} distinct small functions (no deps) and ${BUILDS} calls for one same function, all started at once.`,
      '',
      '| | wall time | images/s | peak RSS of the process |',
      '|---|---:|---:|---:|',
      `| one build alone (baseline) | ${(builds.aloneMs / 1000).toFixed(2)} s | ${(1000 / builds.aloneMs).toFixed(2)} | ${mb(builds.rssAfterAloneMb)} |`,
      `| ${BUILDS} + ${BUILDS} at once | ${(builds.wallMs / 1000).toFixed(1)} s | ${((images * 1000) / builds.wallMs).toFixed(2)} | ${mb(builds.peakRssMb)} |`,
      '',
      `The same function was built ${builds.builtSame === 1 ? 'once' : `${builds.builtSame} times`} (the other ${BUILDS - builds.builtSame} calls joined that build); ${images} images at once give ${((builds.aloneMs * images) / builds.wallMs).toFixed(1)}× the throughput of one build at a time.`,
    );
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const engine = (await docker(['version', '--format', '{{.Server.Version}}'])).trim();
  const machine = `${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Docker Engine ${engine}, Node ${process.versions.node}`;
  const checkRegistry = await startRegistry('anonymous');
  const rig = BUILDS > 0 ? await startPipelineRig('bench-load', ['anonymous']) : undefined;
  try {
    const output = await runWorker({
      checks: CHECKS,
      builds: BUILDS,
      concurrency: CONCURRENCY,
      checkRegistry: { host: checkRegistry.host, url: checkRegistry.url },
      buildRegistry: rig ? `${rig.targets.anonymous!.host}/load` : '',
      buildCatalog: rig?.catalog ?? [],
      dockerConfig: rig?.dockerConfigJson ?? '{"auths":{}}',
      nonce: Date.now().toString(36),
    });
    if (output.builds && output.builds.builtSame !== 1) throw new Error(`the same function was built ${output.builds.builtSame} times`);
    console.log(report(output, machine));
  } finally {
    await rig?.stop();
    await checkRegistry.stop();
  }
}

await main();
