// lib/docker against the real Engine: connection from the environment (socket, minikube-style TLS),
// builds whose verdict comes from the message stream, cancellation that leaves no container, and
// pushes whose digest is the one the registry serves.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import Dockerode from 'dockerode';
import { connectDocker, dockerEndpointFromEnv } from '../../lib/docker/connect.ts';
import { buildImage } from '../../lib/docker/build-image.ts';
import { pushImage, removeImage } from '../../lib/docker/push-image.ts';
import { ensureImage, runStep } from '../../lib/docker/run-step.ts';
import { layerTar } from '../../lib/image/tar.ts';
import type { DockerProgress } from '../../lib/docker/progress.ts';
import { docker } from '../support/docker.ts';
import { dockerTlsEndpoint } from '../support/docker-tls.ts';
import { containersFrom, contextTar, imageScope } from '../support/engine-images.ts';
import { freePort } from '../support/net.ts';
import { dockerClientConfig, startRegistry, type RegistryHandle } from '../support/registry.ts';
import { rejectsWith } from '../support/errors.ts';

const scope = imageScope('docker-engine');
const engine = new Dockerode({ socketPath: '/var/run/docker.sock' });
const base = `fib-docker-engine-base:${scope.value}`;
let anonymous: RegistryHandle;
let basic: RegistryHandle;

test.before(async () => {
  // FROM scratch with busybox: nothing to pull, and the scope label is inherited by every image built on it.
  await buildImage(engine, {
    context: await contextTar({ Dockerfile: `FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n` }, { busybox: true }),
    tags: [base],
    labels: { [scope.label.split('=')[0]!]: scope.value },
  });
  [anonymous, basic] = await Promise.all([startRegistry('anonymous'), startRegistry('basic')]);
});

test.after(async () => {
  await Promise.all([anonymous?.stop(), basic?.stop()]);
  await scope.cleanup();
});


test('endpoint from the environment: socket by default, tcp + TLS as minikube docker-env sets it', () => {
  assert.equal(dockerEndpointFromEnv({}).options.socketPath, '/var/run/docker.sock');
  assert.equal(dockerEndpointFromEnv({ DOCKER_HOST: 'unix:///run/other.sock' }).options.socketPath, '/run/other.sock');
  const plain = dockerEndpointFromEnv({ DOCKER_HOST: 'tcp://10.0.0.5' });
  assert.equal([plain.options.protocol, plain.options.host, plain.options.port], ['http', '10.0.0.5', '2375']);
});

test('connectDocker: a closed port, a missing socket and missing cert files are typed errors naming the endpoint', async () => {
  const port = await freePort();
  const closed = await rejectsWith(connectDocker({ DOCKER_HOST: `tcp://127.0.0.1:${port}` }), 'E_DOCKER_UNAVAILABLE');
  assert.is(closed.kind, 'infrastructure');
  assert.match(closed.message, `tcp://127.0.0.1:${port}`);
  const socket = await rejectsWith(connectDocker({ DOCKER_HOST: 'unix:///nonexistent/docker.sock' }), 'E_DOCKER_UNAVAILABLE');
  assert.match(socket.message, 'unix:///nonexistent/docker.sock');
  const certs = await rejectsWith(connectDocker({ DOCKER_HOST: `tcp://127.0.0.1:${port}`, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/nonexistent-certs' }), 'E_DOCKER_CONFIG');
  assert.match(certs.message, '/nonexistent-certs/ca.pem');
});

test('connectDocker: a daemon that accepts but never answers times out', async () => {
  const sockets: Socket[] = [];
  const server = createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  try {
    const started = Date.now();
    const error = await rejectsWith(connectDocker({ DOCKER_HOST: `tcp://127.0.0.1:${port}` }, { timeoutMs: 300 }), 'E_DOCKER_UNAVAILABLE');
    assert.ok(Date.now() - started < 5_000);
    assert.match(error.message, 'within 300 ms');
  } finally {
    for (const s of sockets) s.destroy();
    server.close();
  }
});

test('connectDocker through a TLS endpoint with client certificates (minikube docker-env)', async () => {
  const endpoint = await dockerTlsEndpoint();
  try {
    const viaTls = await connectDocker(endpoint.env);
    const info = await viaTls.version();
    assert.ok(info.ApiVersion);
    assert.ok(endpoint.accepted() >= 1);
    // Without TLS the endpoint hangs up: unavailable, naming the endpoint.
    const error = await rejectsWith(connectDocker({ DOCKER_HOST: endpoint.env.DOCKER_HOST }, { timeoutMs: 3_000 }), 'E_DOCKER_UNAVAILABLE');
    assert.match(error.message, `127.0.0.1:${endpoint.port}`);
  } finally {
    await endpoint.stop();
  }
});

test('buildImage: steps reported, output read to the end, tag and labels applied', async () => {
  const events: DockerProgress[] = [];
  const tag = `fib-docker-engine-ok:${scope.value}`;
  try {
    const built = await buildImage(engine, {
      context: await contextTar({ Dockerfile: `FROM ${base}\nRUN echo built-marker-${scope.value}\n` }),
      tags: [tag],
      labels: { 'io.example.function': 'ok' },
      onProgress: (e) => events.push(e),
    });
    const steps = events.filter((e) => e.kind === 'step');
    assert.equal(steps.map((s) => s.kind === 'step' && `${s.step}/${s.steps}`), ['1/3', '2/3', '3/3']);
    assert.ok(events.some((e) => e.kind === 'output' && e.line === `built-marker-${scope.value}`));
    const inspected = JSON.parse(await docker(['image', 'inspect', tag]))[0];
    assert.is(inspected.Id, built.imageId);
    assert.is(inspected.Config.Labels['io.example.function'], 'ok');
  } finally {
    await docker(['rmi', tag]).catch(() => undefined);
  }
});

test('buildImage: a failing RUN is E_BUILD_FAILED (user) with the step and its output, no container left, no tag', async () => {
  const tag = `fib-docker-engine-fail:${scope.value}`;
  const error = await rejectsWith(
    buildImage(engine, {
      context: await contextTar({ Dockerfile: `FROM ${base}\nRUN echo first-line && echo to-stderr >&2 && exit 7\n` }),
      tags: [tag],
    }),
    'E_BUILD_FAILED',
  );
  assert.is(error.kind, 'user');
  assert.is(error.details.exitCode, 7);
  assert.match(error.message, 'step 2/2');
  assert.match(error.message, 'first-line');
  assert.ok((error.details.outputTail as string[]).includes('to-stderr'));
  assert.equal(await containersFrom(base), []);
  assert.is((await docker(['images', '-q', tag])).trim(), '');
});

test('buildImage: a base image missing from its registry is E_BASE_IMAGE_NOT_FOUND naming it', async () => {
  const missing = `${anonymous.host}/nope/runtime@sha256:${'0'.repeat(64)}`;
  const error = await rejectsWith(
    buildImage(engine, { context: await contextTar({ Dockerfile: `FROM ${missing}\nRUN true\n` }), tags: [`fib-docker-engine-missing:${scope.value}`] }),
    'E_BASE_IMAGE_NOT_FOUND',
  );
  assert.is(error.kind, 'user');
  assert.is(error.details.image, missing);
  assert.match(error.message, missing);
});

test('buildImage: abort and timeout cancel the build and leave no container behind', async () => {
  const controller = new AbortController();
  const started = Date.now();
  const running = buildImage(engine, {
    context: await contextTar({ Dockerfile: `FROM ${base}\nRUN echo sleeping && sleep 60\n` }),
    tags: [`fib-docker-engine-abort:${scope.value}`],
    signal: controller.signal,
    onProgress: (e) => {
      if (e.kind === 'output' && e.line === 'sleeping') controller.abort();
    },
  });
  await rejectsWith(running, 'E_BUILD_ABORTED');
  assert.ok(Date.now() - started < 30_000);
  assert.equal(await containersFrom(base), []);

  const timedOut = await rejectsWith(
    buildImage(engine, { context: await contextTar({ Dockerfile: `FROM ${base}\nRUN sleep 60\n` }), tags: [`fib-docker-engine-timeout:${scope.value}`], timeoutMs: 1_500 }),
    'E_BUILD_TIMEOUT',
  );
  assert.is(timedOut.kind, 'infrastructure');
  assert.equal(await containersFrom(base), []);
});

test('pushImage: the digest is the one the registry serves; the local tag can be removed', async () => {
  const repository = `${anonymous.host}/fib/pushed`;
  await docker(['tag', base, `${repository}:one`]);
  const bytes: number[] = [];
  const pushed = await pushImage(engine, { repository, tag: 'one', onProgress: (e) => e.kind === 'push' && e.current && bytes.push(e.current) });
  assert.match(pushed.digest, /^sha256:[0-9a-f]{64}$/);
  assert.ok(bytes.length > 0);
  const head = await fetch(`${anonymous.url}/v2/fib/pushed/manifests/one`, { method: 'HEAD', headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
  assert.is(head.headers.get('docker-content-digest'), pushed.digest);
  assert.ok(await removeImage(engine, `${repository}:one`));
  assert.is((await docker(['images', '-q', `${repository}:one`])).trim(), '');
  assert.not.ok(await removeImage(engine, `${repository}:one`));
});

test('pushImage: Basic credentials in X-Registry-Auth; a wrong password is E_PUSH_FAILED (user) naming the key, never the secret', async () => {
  const repository = `${basic.host}/fib/private`;
  await docker(['tag', base, `${repository}:one`]);
  try {
    const wrong = 'not-the-password-' + scope.value;
    const error = await rejectsWith(
      pushImage(engine, { repository, tag: 'one', auth: { username: basic.username!, password: wrong, serveraddress: basic.host }, credentialKey: `http://${basic.host}/v2` }),
      'E_PUSH_FAILED',
    );
    assert.is(error.kind, 'user');
    assert.match(error.message, `http://${basic.host}/v2`);
    assert.not.match(JSON.stringify({ m: error.message, d: error.details }), wrong);
    const anonymousPush = await rejectsWith(pushImage(engine, { repository, tag: 'one' }), 'E_PUSH_FAILED');
    assert.match(anonymousPush.message, 'without a credential');
    const pushed = await pushImage(engine, { repository, tag: 'one', auth: { username: basic.username!, password: basic.password!, serveraddress: basic.host } });
    assert.match(pushed.digest, /^sha256:/);
  } finally {
    await removeImage(engine, `${repository}:one`);
  }
});

test('buildImage: a private base image is pulled with the credentials in X-Registry-Config', async () => {
  const privateBase = `${basic.host}/fib/base:${scope.value}`;
  const config = dockerClientConfig(basic);
  try {
    await docker(['tag', base, privateBase]);
    await docker(['--config', config.dir, 'push', privateBase]);
    await docker(['rmi', privateBase]);
    const context = await contextTar({ Dockerfile: `FROM ${privateBase}\nRUN echo from-private\n` });
    const refused = await rejectsWith(buildImage(engine, { context, tags: [`fib-docker-engine-private:${scope.value}`] }), 'E_BASE_IMAGE_PULL_FAILED');
    assert.is(refused.kind, 'user');
    assert.is(refused.details.image, privateBase);
    const built = await buildImage(engine, {
      context,
      tags: [`fib-docker-engine-private:${scope.value}`],
      registryAuths: { [basic.host]: { username: basic.username!, password: basic.password!, serveraddress: basic.host } },
    });
    assert.ok(built.output.includes('from-private'));
  } finally {
    config.cleanup();
    await docker(['rmi', `fib-docker-engine-private:${scope.value}`]).catch(() => undefined);
    await docker(['rmi', privateBase]).catch(() => undefined);
  }
});

test('ensureImage: a step image missing from its registry, or refused to a pull without credentials, is a user error naming it and the remedy', async () => {
  const missing = `${anonymous.host}/nope/install@sha256:${'0'.repeat(64)}`;
  const notFound = await rejectsWith(ensureImage(engine, missing, { what: 'image of the install step' }), 'E_BASE_IMAGE_NOT_FOUND');
  assert.is(notFound.kind, 'user');
  assert.is(notFound.details.image, missing);
  assert.match(notFound.message, `the image of the install step ${missing} does not exist`);
  assert.match(notFound.message, 'Check the runtime catalog entry');

  const tagged = `${basic.host}/fib/step:${scope.value}`;
  const config = dockerClientConfig(basic);
  let pinned = '';
  try {
    await docker(['tag', base, tagged]);
    const pushed = await docker(['--config', config.dir, 'push', tagged]);
    pinned = `${basic.host}/fib/step@${/digest: (sha256:[0-9a-f]{64})/.exec(pushed)![1]}`;
    await docker(['rmi', tagged]);
    const refused = await rejectsWith(ensureImage(engine, pinned, { what: 'image of the install step' }), 'E_BASE_IMAGE_PULL_FAILED');
    assert.is(refused.kind, 'user');
    assert.is(refused.details.image, pinned);
    assert.match(refused.message, `the registry refused to hand out the image of the install step ${pinned}`);
    assert.match(refused.message, 'Give a credential for its registry');
    const user = await ensureImage(engine, pinned, { auth: { username: basic.username!, password: basic.password!, serveraddress: basic.host } });
    assert.is(user, '');
  } finally {
    config.cleanup();
    await docker(['rmi', tagged]).catch(() => undefined);
    if (pinned) await docker(['rmi', pinned]).catch(() => undefined);
  }
});

/** An HTTP endpoint in front of the Engine's socket that never answers the requests `hang` picks: a daemon frozen in that call. */
async function frozenEngine(hang: (request: IncomingMessage) => boolean): Promise<{ docker: Dockerode; held: () => number; stop: () => Promise<void> }> {
  const held = new Set<ServerResponse>();
  const server = createHttpServer((request, response) => {
    if (hang(request)) {
      held.add(response);
      return;
    }
    const upstream = httpRequest({ socketPath: '/var/run/docker.sock', path: request.url, method: request.method, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    upstream.on('error', () => response.destroy());
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    docker: new Dockerode({ host: '127.0.0.1', port, protocol: 'http' }),
    held: () => held.size,
    stop: () => new Promise<void>((resolve) => {
      for (const response of held) response.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

test('runStep: a daemon that never answers the wait for the step: the call ends when its signal fires and the container is removed', async () => {
  const frozen = await frozenEngine((request) => request.method === 'POST' && /\/containers\/[^/]+\/wait/.test(request.url ?? ''));
  try {
    const started = Date.now();
    const signal = AbortSignal.timeout(1_500);
    const running = runStep(frozen.docker, {
      image: base,
      command: 'sleep 60',
      env: {},
      input: await layerTar([{ name: 'kubeless', type: 'directory', mode: 0o755, uid: 0, gid: 0 }]),
      step: 'install',
      signal,
    });
    // Without the signal on the wait, the call would hang for good: give up well before the test runner does.
    const outcome = await Promise.race([running.then(() => 'resolved', (reason: unknown) => ({ reason })), new Promise((resolve) => setTimeout(resolve, 20_000, 'still waiting'))]);
    assert.type(outcome, 'object', `rejected, not ${String(outcome)}`);
    // The cancelled request's AbortError carries the signal's reason; a daemon failure would not.
    const reason = (outcome as { reason: unknown }).reason;
    assert.ok(reason === signal.reason || (reason as Error).cause === signal.reason, `rejected with the signal's reason, not ${String(reason)}`);
    assert.ok(Date.now() - started < 8_000, `ended after ${Date.now() - started} ms`);
    assert.is(frozen.held(), 1, 'the wait was asked for and never answered');
    assert.equal(await containersFrom(base), [], 'the step container is removed');
  } finally {
    await frozen.stop();
    for (const id of await containersFrom(base)) await docker(['rm', '-f', id]).catch(() => undefined);
  }
});

test.run();
