// The `minikube docker-env` situation on one machine: the local Docker Engine behind a TCP endpoint
// on loopback that demands TLS with a client certificate. Each accepted connection is piped
// byte for byte to the Engine's unix socket, so attach/exec/build streams and HTTP upgrades pass.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type TLSSocket } from 'node:tls';
import { makeCa, makeLeaf } from './certs.ts';

export interface DockerTlsEndpoint {
  /** Exactly what `minikube docker-env` sets. */
  env: { DOCKER_HOST: string; DOCKER_TLS_VERIFY: '1'; DOCKER_CERT_PATH: string };
  port: number;
  /** Connections accepted (TLS handshake with a valid client certificate done). */
  accepted(): number;
  /** Handshakes that failed (e.g. no client certificate). */
  rejected(): number;
  stop(): Promise<void>;
}

const running = new Set<DockerTlsEndpoint>();

/** Endpoints started by this process and not stopped yet (for the leftovers check). */
export function runningDockerTlsEndpoints(): DockerTlsEndpoint[] {
  return [...running];
}

function engineSocketPath(): string {
  const host = process.env.DOCKER_HOST;
  if (host?.startsWith('unix://')) return host.slice('unix://'.length);
  return '/var/run/docker.sock';
}

export async function dockerTlsEndpoint(options: { socketPath?: string } = {}): Promise<DockerTlsEndpoint> {
  const socketPath = options.socketPath ?? engineSocketPath();
  const dir = mkdtempSync(join(tmpdir(), 'fib-docker-tls-'));
  const sockets = new Set<Socket>();
  let accepted = 0;
  let rejected = 0;
  try {
    // One CA signs both sides, as minikube does; the client files sit where the Docker CLI looks.
    const certs = join(dir, 'certs');
    const ca = await makeCa(dir, 'ca', 'function-image-builder test Docker CA');
    const server = await makeLeaf(dir, 'server', ca, { commonName: 'localhost', usage: 'server' });
    const client = await makeLeaf(dir, 'client', ca, { commonName: 'function-image-builder test client', usage: 'client' });
    mkdirSync(certs);
    writeFileSync(join(certs, 'ca.pem'), ca.certPem);
    writeFileSync(join(certs, 'cert.pem'), client.certPem);
    writeFileSync(join(certs, 'key.pem'), client.keyPem, { mode: 0o600 });

    const tlsServer = createServer({
      key: server.keyPem,
      cert: server.certPem,
      ca: ca.certPem,
      requestCert: true,
      rejectUnauthorized: true,
      // Half-closes are passed on: `docker run -i` ends stdin while output is still coming.
      allowHalfOpen: true,
    });
    tlsServer.on('tlsClientError', (_error, socket) => {
      rejected++;
      socket.destroy();
    });
    tlsServer.on('secureConnection', (front: TLSSocket) => {
      accepted++;
      const back = connect({ path: socketPath, allowHalfOpen: true });
      sockets.add(front);
      sockets.add(back);
      const close = () => {
        front.destroy();
        back.destroy();
      };
      // 'close' comes once both directions are done (or on an error): the other side is finished too.
      front.on('close', () => {
        sockets.delete(front);
        back.destroy();
      });
      back.on('close', () => {
        sockets.delete(back);
        front.destroy();
      });
      front.on('error', close);
      back.on('error', close);
      front.pipe(back);
      back.pipe(front);
    });
    await new Promise<void>((resolve, reject) => {
      tlsServer.once('error', reject);
      tlsServer.listen(0, '127.0.0.1', () => resolve());
    });
    const address = tlsServer.address();
    if (!address || typeof address !== 'object') throw new Error('TLS endpoint has no address');
    const port = address.port;

    let stopped: Promise<void> | undefined;
    const endpoint: DockerTlsEndpoint = {
      env: { DOCKER_HOST: `tcp://127.0.0.1:${port}`, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs },
      port,
      accepted: () => accepted,
      rejected: () => rejected,
      stop() {
        stopped ??= (async () => {
          const closed = new Promise<void>((resolve) => tlsServer.close(() => resolve()));
          for (const socket of sockets) socket.destroy();
          await closed;
          rmSync(dir, { recursive: true, force: true });
          running.delete(endpoint);
        })();
        return stopped;
      },
    };
    running.add(endpoint);
    return endpoint;
  } catch (error) {
    for (const socket of sockets) socket.destroy();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
