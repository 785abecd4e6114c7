// test/run.ts runs this file last, after every other test file of this process, and it checks that
// nothing they started outlives them. Kept in one process with them (test/run.ts), so the rig's own registries,
// token servers and TLS endpoints are visible here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { docker, TEST_LABEL } from '../support/docker.ts';
import { findLeftovers, otherTestRuns, ownLineage, RIG_TEMP_PREFIX, type Leftover } from '../support/leftovers.ts';
import { startRegistry } from '../support/registry.ts';
import { removeRuntimeImages } from '../support/runtime-images.ts';
import { buildTinyImage } from '../support/tiny-image.ts';

test('the leftovers check sees a running registry, a labelled container, an image, a volume and a rig temp dir', async () => {
  const since = Date.now() - 1_000;
  const registry = await startRegistry('tls');
  const temp = mkdtempSync(join(tmpdir(), `${RIG_TEMP_PREFIX}leftover-probe-`));
  const image = await buildTinyImage('fib-rig-local/leftover-probe');
  const container = (await docker(['create', '--label', `${TEST_LABEL}=leftover-probe`, image.image])).trim();
  const volume = (await docker(['volume', 'create', '--label', `${TEST_LABEL}=leftover-probe`, `${RIG_TEMP_PREFIX}leftover-probe-${process.pid}`])).trim();
  const probes: [Leftover['kind'], string][] = [
    ['registry', registry.url],
    ['process', String(registry.pid)],
    ['docker-certs', registry.host],
    ['temp', temp],
    ['temp', registry.dir],
    ['container', container.slice(0, 12)],
    ['image', image.image],
    ['volume', volume],
  ];
  const seen = (found: Leftover[]) => probes.filter(([kind, part]) => found.some((f) => f.kind === kind && f.what.includes(part)));
  try {
    assert.equal(seen(await findLeftovers(since)), probes);
  } finally {
    await docker(['rm', '--force', container]);
    await docker(['volume', 'rm', '--force', volume]);
    await image.remove();
    rmSync(temp, { recursive: true, force: true });
    await registry.stop();
  }
  // Only the probes: a concurrent test run on this machine may have made things meanwhile.
  assert.equal(seen(await findLeftovers(since)), []);
});

test('another test run is a node process running test/run.ts; the sh -c npm starts it with and its other ancestors are not', async () => {
  // Launched as npm launches the runner: sh -c "node .../test/run.ts". The stand-in runner reports
  // what otherTestRuns() sees from there, then waits for its stdin to close.
  const dir = mkdtempSync(join(tmpdir(), `${RIG_TEMP_PREFIX}test-run-`));
  mkdirSync(join(dir, 'test'));
  const leftovers = resolve(import.meta.dirname, '..', 'support', 'leftovers.ts');
  writeFileSync(
    join(dir, 'test', 'run.ts'),
    `import { otherTestRuns } from ${JSON.stringify(leftovers)};\n` +
      `console.log(JSON.stringify({ pid: process.pid, ppid: process.ppid, others: otherTestRuns() }));\n` +
      `process.stdin.resume();\n`,
  );
  const shell = spawn('sh', ['-c', `"$0" ${join(dir, 'test', 'run.ts')}; true`, process.execPath], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const [line] = (await once(shell.stdout, 'data')) as [Buffer];
    const seen = JSON.parse(line.toString()) as { pid: number; ppid: number; others: number[] };
    assert.is(seen.ppid, shell.pid, 'the stand-in runs under the sh -c');
    assert.not.ok(seen.others.includes(seen.ppid), 'its sh -c parent is not another run');
    assert.not.ok(seen.others.includes(process.pid), 'this process, its ancestor, is not another run');
    // From here, the stand-in is another run, and its sh -c (not a node process) is not.
    const here = otherTestRuns();
    assert.ok(here.includes(seen.pid), `the stand-in runner ${seen.pid} is another run`);
    assert.not.ok(here.includes(shell.pid!), 'a shell is not a run');
    for (const pid of ownLineage()) assert.not.ok(here.includes(pid), `own ancestor ${pid}`);
    assert.not.ok(here.includes(process.ppid), 'the parent (under npm test: sh -c "node test/run.ts")');
  } finally {
    shell.stdin.end();
    if (shell.exitCode === null) await once(shell, 'exit');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('nothing the tests started outlives them', async () => {
  // The offline runtime images are a cache shared by the test files of one run; the run ends here,
  // so they go too (unless another run on this machine may still be using them).
  if (otherTestRuns().length === 0) await removeRuntimeImages();
  // Removal of --rm containers and exiting children can lag a moment behind the test that ended them.
  const deadline = Date.now() + 10_000;
  let found = await findLeftovers();
  while (found.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    found = await findLeftovers();
  }
  // Docker objects and temp dirs of a concurrent test run on this machine cannot be told from ours.
  const shared = new Set<Leftover['kind']>(['container', 'image', 'temp', 'docker-certs']);
  const others = otherTestRuns();
  const ours = others.length > 0 ? found.filter((f) => !shared.has(f.kind)) : found;
  const unsure = found.filter((f) => !ours.includes(f));
  if (unsure.length > 0) {
    console.warn(`leftovers check: other test runs (pids ${others.join(', ')}) are active; not failing on:\n  ${unsure.map((f) => `${f.kind}: ${f.what}`).join('\n  ')}`);
  }
  assert.equal(ours.map((f) => `${f.kind}: ${f.what}`), [], 'leftovers from this test run');
});

test.run();
