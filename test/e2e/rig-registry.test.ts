import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { startRegistry } from '../support/registry.ts';

test('anonymous registry answers /v2/ and is gone after stop', async () => {
  const registry = await startRegistry('anonymous');
  const response = await fetch(`${registry.url}/v2/`);
  assert.is(response.status, 200);
  await registry.stop();
  assert.not.ok(existsSync(registry.dir));
  await fetch(`${registry.url}/v2/`).then(
    () => assert.unreachable('registry still answers after stop'),
    () => {},
  );
});

test.run();
