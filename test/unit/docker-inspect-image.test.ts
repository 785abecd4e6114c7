// Looking an image up in the daemon (before a step's pull, before removing a pushed tag) when the
// daemon fails the request: an HTTP server stands in for the Engine's API, so the errors are the
// ones dockerode really raises for a 500 and for a connection dropped without an answer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Dockerode from 'dockerode';
import { localImageId } from '../../lib/docker/push-image.ts';
import { ensureImage } from '../../lib/docker/run-step.ts';
import { rejectsWith } from '../support/errors.ts';

const image = 'registry.example:5000/kubeless/nodejs@sha256:' + '0'.repeat(64);

/** A daemon that answers every request with `answer` (or never, leaving it to the test's signal). */
async function engine(answer: (response: ServerResponse) => void): Promise<{ docker: Dockerode; stop: () => Promise<void> }> {
  const server = createServer((_request, response) => answer(response));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    docker: new Dockerode({ host: '127.0.0.1', port, protocol: 'http' }),
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const serverError = (response: ServerResponse) => response.writeHead(500, { 'content-type': 'application/json' }).end('{"message":"layer store is shutting down"}');
const dropped = (response: ServerResponse) => response.socket?.destroy();

test('ensureImage: a daemon failing the lookup of the step image (500, dropped connection) is E_DOCKER_UNAVAILABLE naming the image', async () => {
  for (const [what, answer] of [['500', serverError], ['dropped', dropped]] as const) {
    const daemon = await engine(answer);
    try {
      const error = await rejectsWith(ensureImage(daemon.docker, image, { what: 'image of the install step' }), 'E_DOCKER_UNAVAILABLE');
      assert.is(error.kind, 'infrastructure', what);
      assert.match(error.message, image, what);
      assert.is(error.details.image, image, what);
      if (what === '500') assert.match(error.message, 'layer store is shutting down');
    } finally {
      await daemon.stop();
    }
  }
});

test('localImageId: a daemon failing the lookup is E_DOCKER_UNAVAILABLE naming the image', async () => {
  const daemon = await engine(serverError);
  try {
    const error = await rejectsWith(localImageId(daemon.docker, 'registry.example:5000/ns/fn:1', AbortSignal.timeout(5_000)), 'E_DOCKER_UNAVAILABLE');
    assert.is(error.details.image, 'registry.example:5000/ns/fn:1');
  } finally {
    await daemon.stop();
  }
});

test('ensureImage: a lookup cancelled by its signal rejects with the cancellation, not as an unavailable daemon', async () => {
  const daemon = await engine(() => {});
  try {
    const controller = new AbortController();
    const pending = ensureImage(daemon.docker, image, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('cancelled by the test')), 50);
    const error = await pending.then(() => undefined, (reason: unknown) => reason as Error & { code?: string });
    assert.ok(error !== undefined, 'rejected');
    assert.is.not(error!.code, 'E_DOCKER_UNAVAILABLE');
    assert.ok(error === controller.signal.reason || error!.cause === controller.signal.reason, String(error));
  } finally {
    await daemon.stop();
  }
});

test.run();
