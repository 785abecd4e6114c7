// Runs every uvu test file (test/**/*.test.ts), one process, files in name order.
// `npm test -- registry docker` runs only the files whose path contains one of the words.
// Ends with the line CI reads: "N passed, N failed".
import { readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { run } from 'uvu/run';

const root = resolve(import.meta.dirname, '..');
const filters = process.argv.slice(2);

function findTests(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== 'support' && entry.name !== 'node_modules') found.push(...findTests(path));
    else if (entry.isFile() && entry.name.endsWith('.test.ts')) found.push(path);
  }
  return found.sort();
}

const files = findTests(join(root, 'test')).filter(
  (file) => filters.length === 0 || filters.some((word) => relative(root, file).includes(word)),
);
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  console.log('0 passed, 0 failed');
  process.exit(1);
}

// uvu prints its own summary; count from it so the last line is in the form CI recognises.
let total = 0;
let passed = 0;
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
  const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
  const plain = text.replace(/\x1b\[[0-9;]*m/g, '');
  const t = /Total:\s+(\d+)/.exec(plain);
  const p = /Passed:\s+(\d+)/.exec(plain);
  if (t) total = Number(t[1]);
  if (p) passed = Number(p[1]);
  return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
}) as typeof process.stdout.write;

await run(files.map((file) => ({ name: relative(root, file), file })));
process.stdout.write = write;
console.log(`${passed} passed, ${total - passed} failed`);
if (total === 0) process.exitCode = 1;
