// Runs every uvu test file (test/**/*.test.ts), one process, files in name order, the leftovers check last.
// test/unit/ holds tests that start no real component (seconds: `npm run test:unit`); test/e2e/ the
// ones against the Docker Engine, registries and the test API server's kubelet (`npm run test:e2e`).
// `npm test -- registry docker` runs only the files whose path contains one of the words.
// Ends with the line CI reads: "N passed, N failed".
import { readdirSync, readFileSync } from 'node:fs';
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

// FIB_TEST_DIR: another folder of test files (the runner's own test runs it on planted failures).
const testDir = process.env.FIB_TEST_DIR ?? join(root, 'test');
const files = findTests(testDir).filter(
  (file) => filters.length === 0 || filters.some((word) => relative(root, file).includes(word)),
);
// The leftovers check looks at what every other file left behind, so it runs last whatever the names.
const LEFTOVERS_CHECK = 'leftovers.test.ts';
files.sort((a, b) => Number(a.endsWith(`/${LEFTOVERS_CHECK}`)) - Number(b.endsWith(`/${LEFTOVERS_CHECK}`)));
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}

// uvu 0.5.6 loses two kinds of failure without a word: an error thrown by a `before` hook and a
// failing test whose error has object `details`, as every BuilderError has. patches/uvu+0.5.6.patch
// mends both; `npm ci` applies it (postinstall: patch-package). An install without it must not run.
const uvuSource = readFileSync(join(root, 'node_modules/uvu/dist/index.mjs'), 'utf8');
if (!uvuSource.includes("errors += format('(before hook)'")) {
  console.error('uvu is not patched: run `npm ci` (its postinstall applies patches/uvu+0.5.6.patch)');
  console.log('0 passed, 1 failed');
  process.exit(1);
}

// The count comes from uvu's per-suite "(ran / total)" lines rather than its closing summary, which a
// throwing `after` hook prevents; tests a failed `before` hook kept from running count as failed.
let total = 0;
let passed = 0;
let problems = 0;
let file = '';
const names = new Set(files.map((f) => relative(root, f)));
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
  const plain = (typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString()).replace(/\x1b\[[0-9;]*m/g, '');
  const suiteEnd = /^ {2}\((\d+) \/ (\d+)\)\n$/.exec(plain);
  if (names.has(plain.trimEnd())) file = plain.trimEnd();
  else if (suiteEnd) {
    passed += Number(suiteEnd[1]);
    total += Number(suiteEnd[2]);
  }
  return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
}) as typeof process.stdout.write;

try {
  await run(files.map((f) => ({ name: relative(root, f), file: f })));
} catch (error) {
  // A throwing `after` hook rejects the whole run (uvu rethrows it from its `finally`).
  console.error(`\n  ${file}: the run stopped:`, error);
  problems++;
}
process.stdout.write = write;
// On exit, after uvu's own exit listener ("Exiting early..." when a run stopped), so that the summary
// stays the last line.
process.on('exit', () => {
  const failed = total - passed + problems;
  console.log(`${passed} passed, ${total === 0 && failed === 0 ? 1 : failed} failed`);
  if (total === 0 || failed > 0) process.exitCode = 1;
});
