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

// uvu 0.5 returns from the `finally` of its suite runner, which drops an error thrown by a `before`
// hook: the suite's tests are counted but not run, nothing is printed, and the exit code stays 0.
// So the count comes from uvu's per-suite "(ran / total)" lines, any shortfall fails the run, and a
// shortfall that no ✘ explains is reported as a hook failure. `test.before` hooks of the default
// suite (what most files use) are wrapped to print their error; named suites cannot be reached.
let total = 0;
let passed = 0;
let problems = 0;
let file = '';
let failedInSuite = 0;
const names = new Set(files.map((f) => relative(root, f)));
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
  const plain = (typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString()).replace(/\x1b\[[0-9;]*m/g, '');
  const written = (write as (...args: unknown[]) => boolean)(chunk, ...rest);
  const suiteEnd = /^ {2}\((\d+) \/ (\d+)\)\n$/.exec(plain);
  if (names.has(plain.trimEnd())) file = plain.trimEnd();
  else if (plain === '✘ ') failedInSuite++;
  else if (suiteEnd) {
    const ran = Number(suiteEnd[1]);
    const count = Number(suiteEnd[2]);
    total += count;
    passed += ran;
    if (count - ran > failedInSuite) {
      console.error(`  ${file}: ${count - ran - failedInSuite} of ${count} tests never ran: a before hook threw (its error, if printed, is above)`);
    }
    failedInSuite = 0;
  }
  return written;
}) as typeof process.stdout.write;

// uvu's failure formatter calls `err.details.split('\n')`, but a BuilderError's `details` is an
// object: the formatter throws inside uvu's catch and the whole suite is silently dropped. Rewrite
// that one line of uvu as it loads, so object details are printed as JSON; a uvu release without the
// line stops the run rather than quietly losing failure messages again.
const UVU_DETAILS = "let { details, operator='' } = err;";
registerHooks({
  load(url, context, nextLoad) {
    const loaded = nextLoad(url, context);
    if (!url.endsWith('/node_modules/uvu/dist/index.mjs')) return loaded;
    const source = String(loaded.source);
    if (!source.includes(UVU_DETAILS)) throw new Error(`test/run.ts: uvu's formatter changed; update the details fix (${url})`);
    const fixed = `${UVU_DETAILS} if (details && typeof details !== 'string') details = JSON.stringify(details, null, 2);`;
    return { ...loaded, source: source.replace(UVU_DETAILS, fixed) };
  },
});

// Loaded only now: uvu decides at load time whether it is driven by a runner (UVU_DEFER) or starts
// itself; uvu/run sets the flag, but importing uvu before that would make it start on its own.
(globalThis as { UVU_DEFER?: number }).UVU_DEFER = 1;
const { test } = await import('uvu');
const defaultBefore = test.before;
test.before = Object.assign(
  (hook: Parameters<typeof defaultBefore>[0]) =>
    defaultBefore(async (context) => {
      try {
        await hook(context);
      } catch (error) {
        console.error(`\n  ${file}: test.before threw:`, error);
        throw error;
      }
    }),
  { each: defaultBefore.each },
);

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
