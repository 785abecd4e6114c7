// Runs every uvu test file (test/**/*.test.ts), one process, files in name order.
// `npm test -- registry docker` runs only the files whose path contains one of the words.
// Ends with the line CI reads: "N passed, N failed".
import { readdirSync } from 'node:fs';
import { registerHooks } from 'node:module';
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
  console.log('0 passed, 1 failed');
  process.exit(1);
}

// uvu 0.5.6 loses two kinds of failure without a word: an error thrown by a `before` hook (its suite
// runner returns from `finally`, so the error is dropped and the suite's tests are counted but not
// run), and a failing test whose error has object `details`, as every BuilderError has (the failure
// formatter calls `details.split` and throws). Both are mended in uvu's source as it loads; a uvu
// release without those lines stops the run rather than losing failures again.
const UVU_FIXES: [original: string, fixed: string][] = [
  ["let { details, operator='' } = err;", "let { details, operator='' } = err; if (details && typeof details !== 'string') details = JSON.stringify(details, null, 2);"],
  [
    'for (hook of before) await hook(state);',
    "try { for (hook of before) await hook(state); } catch (err) { errors += format('(before hook)', err, name); write(FAIL); arr = []; }",
  ],
];
registerHooks({
  load(url, context, nextLoad) {
    const loaded = nextLoad(url, context);
    if (!url.endsWith('/node_modules/uvu/dist/index.mjs')) return loaded;
    let source = String(loaded.source);
    for (const [original, fixed] of UVU_FIXES) {
      if (!source.includes(original)) throw new Error(`test/run.ts: uvu changed; update the fix of "${original}" (${url})`);
      source = source.replace(original, fixed);
    }
    return { ...loaded, source };
  },
});

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
