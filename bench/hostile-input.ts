// node bench/hostile-input.ts: time and peak RSS of the CLI on hostile inline input, each case a
// fresh `function-image-builder tag -` process fed on stdin, against a small valid Function measured
// in the same run (the baseline: what loading the CLI costs). Peak RSS comes from /usr/bin/time -v.
// The target of issue 12.7 is peak RSS ≤ 3× the input + 100 MB, so a Job's 1 Gi limit never fails
// first; the table sets what each case costs over the baseline beside 3× its input.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { gzip, makeTar } from '../test/support/archives.ts';

const CLI = join(import.meta.dirname, '..', 'cli', 'main.ts');
const MB = 1024 * 1024;

/** Values double-quoted (JSON strings are valid YAML); `raw` lines appended to spec as they are. */
function functionYaml(spec: Record<string, string>, raw = ''): string {
  const lines = Object.entries(spec).map(([key, value]) => `  ${key}: ${JSON.stringify(value)}`);
  return ['apiVersion: kubeless.io/v1beta1', 'kind: Function', 'metadata: {name: bench, namespace: default}', 'spec:', '  handler: handler.hello', '  runtime: nodejs14', ...lines, ''].join('\n') + raw;
}

function functionJson(spec: Record<string, string>): string {
  return JSON.stringify({ apiVersion: 'kubeless.io/v1beta1', kind: 'Function', metadata: { name: 'bench', namespace: 'default' }, spec: { handler: 'handler.hello', runtime: 'nodejs14', ...spec } });
}

function aliasBomb(levels: number): string {
  const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
  for (let level = 1; level <= levels; level += 1) {
    lines.push(`a${level}: &a${level} [${Array.from({ length: 10 }, () => `*a${level - 1}`).join(', ')}]`);
  }
  return `${lines.join('\n')}\n`;
}

async function cases(): Promise<{ name: string; input: Buffer }[]> {
  const deepTree = await makeTar(Array.from({ length: 5000 }, (_, depth) => ({ name: `${'d/'.repeat(depth + 1)}`, type: 'directory' as const })));
  const manyEntries = await makeTar(Array.from({ length: 100_000 }, (_, index) => ({ name: `f${index}.js`, content: '' })));
  // As JSON, so that the figures are the archive's and not those of a long YAML double-quoted string.
  const archive = (bytes: Buffer): Buffer =>
    Buffer.from(functionJson({ 'function-content-type': 'base64+compressedtar', function: gzip(bytes).toString('base64') }));
  return [
    { name: 'baseline: small Function', input: Buffer.from(functionYaml({ function: 'module.exports = { hello: () => "hi" }' })) },
    { name: 'accepted: 3.9 MB spec.function, JSON', input: Buffer.from(functionJson({ function: 'x'.repeat(3.9 * MB) })) },
    { name: 'accepted: 3.9 MB spec.function, YAML block scalar', input: Buffer.from(functionYaml({}, `  function: |\n    ${'x'.repeat(3.9 * MB)}\n`)) },
    { name: 'accepted: 3.9 MB spec.function, YAML double-quoted', input: Buffer.from(functionYaml({ function: 'x'.repeat(3.9 * MB) })) },
    { name: 'accepted: 9 000 list items (~45 000 YAML tokens)', input: Buffer.from(`${functionYaml({ function: 'x' })}extra:\n${'- a\n'.repeat(9_000)}`) },
    { name: '100 MB spec.function', input: Buffer.from(functionYaml({ function: 'x'.repeat(100 * MB) })) },
    { name: '50 MB spec.deps', input: Buffer.from(functionYaml({ function: 'x', deps: 'y'.repeat(50 * MB) })) },
    { name: '1M-deep JSON', input: Buffer.from(`${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`) },
    { name: 'YAML alias bomb (9 levels)', input: Buffer.from(aliasBomb(9)) },
    { name: 'tar.gz tree 5000 deep', input: archive(deepTree) },
    { name: 'tar.gz of 100 000 entries', input: archive(manyEntries) },
  ];
}

interface Measure {
  exitCode: number;
  seconds: number;
  peakRssMb: number;
  firstLine: string;
}

function measure(input: Buffer): Promise<Measure> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-v', process.execPath, CLI, 'tag', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout.resume();
    // The CLI may stop reading early (a refused size): a broken pipe is its answer, not ours.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
    child.on('error', reject);
    child.on('close', (code) => {
      const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(stderr);
      const seconds = wall ? Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]) : NaN;
      const firstLine = stderr.split('\n').find((line) => line.startsWith('function-image-builder')) ?? '';
      resolve({ exitCode: code ?? -1, seconds, peakRssMb: rss ? Number(rss[1]) / 1024 : NaN, firstLine: firstLine.slice(0, 140) });
    });
  });
}

const rows: string[] = [];
let baseline: Measure | undefined;
for (const { name, input } of await cases()) {
  const result = await measure(input);
  baseline ??= result;
  const inputMb = input.length / MB;
  rows.push(
    `| ${name} | ${inputMb.toFixed(1)} MB | ${result.exitCode} | ${result.seconds.toFixed(2)} s | ${result.peakRssMb.toFixed(0)} MB ` +
      `| ${(result.peakRssMb - baseline.peakRssMb).toFixed(0)} MB | ${(3 * inputMb).toFixed(1)} MB | ${result.firstLine.replace(/\|/g, '\\|')} |`,
  );
  process.stderr.write(`${rows.at(-1)}\n`);
}
process.stdout.write(['| input | size | exit | time | peak RSS | over the baseline | 3× input | first error line |', '|---|---:|---:|---:|---:|---:|---:|---|', ...rows].join('\n') + '\n');
