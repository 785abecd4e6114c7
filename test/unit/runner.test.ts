// The runner itself: failures uvu 0.5.6 would lose (a throwing `before` hook, an error with object
// details) are printed and counted, and the leftovers check runs after every other file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { RIG_TEMP_PREFIX } from '../support/leftovers.ts';

const runner = resolve(import.meta.dirname, '..', 'run.ts');
const uvu = resolve(import.meta.dirname, '..', '..', 'node_modules', 'uvu', 'dist', 'index.mjs');

function runPlanted(files: Record<string, string>): { status: number | null; stdout: string } {
  const dir = mkdtempSync(join(tmpdir(), `${RIG_TEMP_PREFIX}runner-`));
  try {
    for (const [name, source] of Object.entries(files)) writeFileSync(join(dir, name), source);
    const run = spawnSync(process.execPath, [runner], { env: { ...process.env, FIB_TEST_DIR: dir }, encoding: 'utf8' });
    return { status: run.status, stdout: run.stdout.replace(/\x1b\[[0-9;]*m/g, '') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a throwing before hook and an error with object details are printed and counted as failures', () => {
  const { status, stdout } = runPlanted({
    'a.test.ts': `import { suite } from ${JSON.stringify(uvu)};
const broken = suite('broken');
broken.before(() => { throw new Error('the rig did not start'); });
broken('never runs', () => {});
broken.run();
const detailed = suite('detailed');
detailed('fails with details', () => { const e = new Error('denied'); Object.assign(e, { details: { registry: 'r.example' } }); throw e; });
detailed('passes', () => {});
detailed.run();
`,
  });
  assert.match(stdout, /the rig did not start/);
  assert.match(stdout, /"registry": "r\.example"/);
  assert.match(stdout, /^1 passed, 2 failed$/m);
  assert.is(status, 1);
});

test('the leftovers check runs after every other file, whatever the names', () => {
  const { status, stdout } = runPlanted({
    'leftovers.test.ts': `import { test } from ${JSON.stringify(uvu)}; test('check', () => { console.log('ORDER leftovers'); }); test.run();`,
    'zz-late.test.ts': `import { test } from ${JSON.stringify(uvu)}; test('late', () => { console.log('ORDER late'); }); test.run();`,
  });
  assert.equal([...stdout.matchAll(/ORDER (\w+)/g)].map((m) => m[1]), ['late', 'leftovers']);
  assert.match(stdout, /^2 passed, 0 failed$/m);
  assert.is(status, 0);
});

test.run();
