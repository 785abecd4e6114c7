import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, copyFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect as netConnect } from 'node:net';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec, TEST_LABEL } from '../support/docker.ts';
import { dockerTlsEndpoint, type DockerTlsEndpoint } from '../support/docker-tls.ts';
import { buildTinyImage, type TinyImage } from '../support/tiny-image.ts';

let endpoint: DockerTlsEndpoint;
let image: TinyImage | undefined;

function dockerVia(env: Record<string, string>, args: string[], input?: string) {
  // DOCKER_CONTEXT/DOCKER_CONFIG of the caller must not override DOCKER_HOST.
  const { DOCKER_CONTEXT: _context, ...rest } = process.env;
  return exec('docker', args, { env: { ...rest, ...env }, input, timeoutMs: 60_000 });
}

test.before(async () => {
  endpoint = await dockerTlsEndpoint();
});

test.after(async () => {
  await image?.remove();
  await endpoint?.stop();
});

test('docker TLS endpoint: env and cert files are what minikube docker-env sets', () => {
  assert.match(endpoint.env.DOCKER_HOST, /^tcp:\/\/127\.0\.0\.1:\d+$/);
  assert.is(endpoint.env.DOCKER_TLS_VERIFY, '1');
  assert.equal(readdirSync(endpoint.env.DOCKER_CERT_PATH).sort(), ['ca.pem', 'cert.pem', 'key.pem']);
});

test('docker TLS endpoint: serves docker version with the client certificate', async () => {
  const result = await dockerVia(endpoint.env, ['version', '--format', '{{.Server.Version}}']);
  assert.is(result.code, 0, result.stderr);
  assert.match(result.stdout.trim(), /^\d+\.\d+/);
  assert.ok(endpoint.accepted() > 0);
});

test('docker TLS endpoint: refuses a docker client without the client certificate', async () => {
  const caOnly = mkdtempSync(join(tmpdir(), 'fib-docker-tls-client-'));
  try {
    copyFileSync(join(endpoint.env.DOCKER_CERT_PATH, 'ca.pem'), join(caOnly, 'ca.pem'));
    const before = endpoint.rejected();
    const result = await dockerVia({ ...endpoint.env, DOCKER_CERT_PATH: caOnly }, ['version', '--format', '{{.Server.Version}}']);
    assert.is.not(result.code, 0, 'docker without a client certificate must fail');
    assert.not.match(result.stdout, /^\d+\.\d+/m);
    assert.ok(endpoint.rejected() > before, 'the endpoint saw the handshake fail');
  } finally {
    rmSync(caOnly, { recursive: true, force: true });
  }
});

test('docker TLS endpoint: a TLS client without a certificate gets no Engine answer', async () => {
  const ca = readFileSync(join(endpoint.env.DOCKER_CERT_PATH, 'ca.pem'));
  const answer = await new Promise<string>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: endpoint.port, ca, servername: 'localhost' }, () => {
      socket.write('GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n');
    });
    let text = '';
    socket.on('data', (chunk) => (text += chunk));
    socket.on('error', (error) => resolve(`error: ${error.message}`));
    socket.on('close', () => resolve(text || 'closed'));
  });
  assert.not.match(answer, /HTTP\/1\.1 200/);
});

test('docker TLS endpoint: a Node client with the cert files pings the Engine', async () => {
  const files = (name: string) => readFileSync(join(endpoint.env.DOCKER_CERT_PATH, name));
  const body = await new Promise<string>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: endpoint.port, path: '/_ping', ca: files('ca.pem'), cert: files('cert.pem'), key: files('key.pem') },
      (res) => {
        let text = '';
        res.on('data', (chunk) => (text += chunk));
        res.on('end', () => resolve(text));
      },
    );
    req.on('error', reject);
    req.end();
  });
  assert.is(body, 'OK');
});

test('docker TLS endpoint: hijacked attach streams pass both ways (docker run -i)', async () => {
  image = await buildTinyImage('fib-rig-local/tiny');
  const input = 'line one\nline two\n';
  const result = await dockerVia(
    endpoint.env,
    ['run', '-i', '--rm', '--label', `${TEST_LABEL}=rig-docker-tls`, image.image, 'cat'],
    input,
  );
  assert.is(result.code, 0, result.stderr);
  assert.is(result.stdout, input);
});

test('docker TLS endpoint: stop closes the port and removes the cert files', async () => {
  const other = await dockerTlsEndpoint();
  const certPath = other.env.DOCKER_CERT_PATH;
  await other.stop();
  assert.not.ok(existsSync(certPath));
  const refused = await new Promise<string | undefined>((resolve) => {
    const socket = netConnect(other.port, '127.0.0.1', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code));
  });
  assert.is(refused, 'ECONNREFUSED');
});

test.run();
