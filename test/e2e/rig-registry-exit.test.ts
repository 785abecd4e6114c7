// A test process that crashes never calls stop(): the registry processes it started must die with it
// instead of serving on for ever (test/support/registry.ts kills them when the process exits).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { exec } from '../support/docker.ts';
import { RIG_TEMP_PREFIX } from '../support/leftovers.ts';

/** Whether the process is still running (a killed orphan nobody has reaped yet counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

test('registries of a test process that crashes are killed with it', async () => {
  const dir = mkdtempSync(join(tmpdir(), `${RIG_TEMP_PREFIX}crashing-test-`));
  const script = join(dir, 'crash.mts');
  const registry = resolve(import.meta.dirname, '..', 'support', 'registry.ts');
  writeFileSync(
    script,
    `import { startRegistry } from ${JSON.stringify(registry)};\n` +
      `const handles = [await startRegistry('anonymous'), await startRegistry('basic')];\n` +
      `console.log(JSON.stringify(handles.map((h) => ({ pid: h.pid, dir: h.dir }))));\n` +
      `throw new Error('a test crashed');\n`,
  );
  let started: { pid: number; dir: string }[] = [];
  try {
    const outcome = await exec(process.execPath, [script], { timeoutMs: 60_000 });
    assert.is(outcome.code, 1, outcome.stderr);
    assert.match(outcome.stderr, /a test crashed/);
    started = JSON.parse(outcome.stdout) as { pid: number; dir: string }[];
    assert.is(started.length, 2);
    const deadline = Date.now() + 5_000;
    while (started.some((s) => alive(s.pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(started.filter((s) => alive(s.pid)).map((s) => s.pid), [], 'registry processes still running');
  } finally {
    // The crash left the registries' storage behind (only stop() removes it); without the fix, the processes too.
    for (const s of started) {
      if (alive(s.pid)) process.kill(s.pid, 'SIGKILL');
      rmSync(s.dir, { recursive: true, force: true });
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
