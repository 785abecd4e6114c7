// Sorts last: runs after every other test file of this process and checks that nothing they
// started outlives them. Kept in one process with them (test/run.ts), so the rig's own registries,
// token servers and TLS endpoints are visible here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { docker, TEST_LABEL } from './support/docker.ts';
import { findLeftovers, otherTestRuns, RIG_TEMP_PREFIX, type Leftover } from './support/leftovers.ts';
import { startRegistry } from './support/registry.ts';
import { removeRuntimeImages } from './support/runtime-images.ts';
import { buildTinyImage } from './support/tiny-image.ts';

test('the leftovers check sees a running registry, a labelled container, an image and a rig temp dir', async () => {
  const since = Date.now() - 1_000;
  const registry = await startRegistry('tls');
  const temp = mkdtempSync(join(tmpdir(), `${RIG_TEMP_PREFIX}leftover-probe-`));
  const image = await buildTinyImage('fib-rig-local/leftover-probe');
  const container = (await docker(['create', '--label', `${TEST_LABEL}=leftover-probe`, image.image])).trim();
  try {
    const found = await findLeftovers(since);
    const has = (kind: Leftover['kind'], part: string) => found.some((f) => f.kind === kind && f.what.includes(part));
    assert.ok(has('registry', registry.url), 'registry');
    assert.ok(has('process', String(registry.pid)), 'registry process');
    assert.ok(has('docker-certs', registry.host), 'certs.d entry');
    assert.ok(has('temp', temp), 'temp dir');
    assert.ok(has('temp', registry.dir), 'registry dir');
    assert.ok(has('container', container.slice(0, 12)), 'container');
    assert.ok(has('image', image.image), 'image');
  } finally {
    await docker(['rm', '--force', container]);
    await image.remove();
    rmSync(temp, { recursive: true, force: true });
    await registry.stop();
  }
  const after = await findLeftovers(since);
  assert.equal(after, []);
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
