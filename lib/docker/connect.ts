// Reaches the Docker Engine the way the docker CLI does from its environment: the local socket by
// default, or DOCKER_HOST with DOCKER_TLS_VERIFY / DOCKER_CERT_PATH exactly as `minikube docker-env`
// sets them. The daemon is pinged before use so a missing daemon is one clear error up front rather
// than a broken build stream later.
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { deadline } from './deadline.ts';
import { DockerConfigError, DockerUnavailableError } from './errors.ts';

const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';
const DEFAULT_PING_TIMEOUT_MS = 10_000;

export interface DockerEndpoint {
  /** Where the daemon is, for messages: `unix:///var/run/docker.sock`, `tcp://192.168.49.2:2376 (TLS, verified)`. */
  description: string;
  options: Dockerode.DockerOptions;
}

export interface ConnectOptions {
  /** How long the first ping may take before the daemon counts as unavailable. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

type Env = Record<string, string | undefined>;

/** Turns DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_TLS and DOCKER_CERT_PATH into dockerode options. */
export function dockerEndpointFromEnv(env: Env = process.env): DockerEndpoint {
  const host = env.DOCKER_HOST?.trim();
  // Everything is given explicitly: docker-modem also reads process.env, and its values must not
  // leak into an endpoint built from another environment.
  const base: Dockerode.DockerOptions = { socketPath: undefined, host: undefined, port: undefined, protocol: undefined, ca: undefined, cert: undefined, key: undefined };
  if (!host) return { description: `unix://${DEFAULT_DOCKER_SOCKET}`, options: { ...base, socketPath: DEFAULT_DOCKER_SOCKET } };
  if (host.startsWith('unix://')) {
    const socketPath = host.slice('unix://'.length) || DEFAULT_DOCKER_SOCKET;
    return { description: `unix://${socketPath}`, options: { ...base, socketPath } };
  }
  const withScheme = host.includes('://') ? host : `tcp://${host}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new DockerConfigError(`DOCKER_HOST=${host} is not a Docker endpoint: use unix:///path/to/docker.sock or tcp://host:port`, { details: { DOCKER_HOST: host } });
  }
  if (url.protocol !== 'tcp:') {
    throw new DockerConfigError(`DOCKER_HOST=${host} uses ${url.protocol.slice(0, -1)}://, which is not supported: use unix:// or tcp://`, { details: { DOCKER_HOST: host } });
  }
  // The docker CLI turns TLS on for any non-empty DOCKER_TLS_VERIFY; "0" is taken as off here too,
  // because that is what everyone who writes it means.
  const verify = isOn(env.DOCKER_TLS_VERIFY);
  const tls = verify || isOn(env.DOCKER_TLS);
  const port = url.port || (tls ? '2376' : '2375');
  const hostname = url.hostname;
  const description = `tcp://${url.hostname}:${port}${tls ? (verify ? ' (TLS, verified)' : ' (TLS, not verified)') : ''}`;
  if (!tls) return { description, options: { ...base, host: hostname, port, protocol: 'http' } };

  const certPath = env.DOCKER_CERT_PATH || join(homedir(), '.docker');
  const ca = readCertFile(certPath, 'ca.pem', verify);
  const cert = readCertFile(certPath, 'cert.pem', false);
  const key = readCertFile(certPath, 'key.pem', false);
  const options: Dockerode.DockerOptions & { agent?: Agent } = { ...base, host: hostname, port, protocol: 'https', ca, cert, key };
  if (!verify) {
    // DOCKER_TLS without verification: encrypted, client certificate still offered, server unchecked.
    options.agent = new Agent({ rejectUnauthorized: false, ca, cert, key, keepAlive: false });
    options.ca = undefined;
  }
  return { description, options };
}

/** A Dockerode for the environment's daemon, after the daemon answered a ping. */
export async function connectDocker(env: Env = process.env, options: ConnectOptions = {}): Promise<Dockerode> {
  const endpoint = dockerEndpointFromEnv(env);
  let docker: Dockerode;
  try {
    docker = new Dockerode(endpoint.options);
  } catch (error) {
    throw new DockerConfigError(`cannot use the Docker endpoint ${endpoint.description}: ${(error as Error).message}`, { cause: error, details: { endpoint: endpoint.description } });
  }
  await pingDocker(docker, endpoint.description, options);
  return docker;
}

/** Throws DockerUnavailableError naming `endpoint` unless the daemon answers `/_ping` in time. */
async function pingDocker(docker: Dockerode, endpoint: string, options: ConnectOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_PING_TIMEOUT_MS;
  const { signal, clear } = deadline(options.signal, timeoutMs);
  try {
    // dockerode accepts an abortSignal on ping; its type declarations do not say so.
    const ping = docker.ping as unknown as (this: Dockerode, o: { abortSignal: AbortSignal }) => Promise<unknown>;
    await ping.call(docker, { abortSignal: signal });
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    throw new DockerUnavailableError(`the Docker Engine at ${endpoint} does not answer: ${describeFailure(error, timeoutMs)}. ${hint(endpoint)}`, {
      cause: error,
      details: { endpoint },
    });
  } finally {
    clear();
  }
}

function describeFailure(error: unknown, timeoutMs: number): string {
  const e = error as { name?: string; code?: string; message?: string; statusCode?: number };
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  if (e.code === 'ENOENT') return 'the socket does not exist';
  if (e.code === 'EACCES') return 'permission denied on the socket';
  if (e.code === 'ECONNREFUSED') return 'connection refused';
  if (e.statusCode) return `it answered HTTP ${e.statusCode}, which a Docker Engine does not`;
  return e.code ? `${e.code}: ${e.message}` : String(e.message ?? error);
}

function hint(endpoint: string): string {
  return endpoint.startsWith('unix://')
    ? 'Start the Docker daemon, or set DOCKER_HOST (e.g. `eval $(minikube docker-env)`).'
    : 'Check DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH (`minikube docker-env` prints them) and that the daemon runs.';
}

function readCertFile(dir: string, name: string, required: boolean): Buffer | undefined {
  const path = join(dir, name);
  try {
    return readFileSync(path);
  } catch (error) {
    if (!required && (error as { code?: string }).code === 'ENOENT') return undefined;
    throw new DockerConfigError(`cannot read ${path} for the TLS connection to the Docker Engine: ${(error as Error).message}. Set DOCKER_CERT_PATH to the directory holding ca.pem, cert.pem and key.pem`, {
      cause: error,
      details: { file: path },
    });
  }
}

function isOn(value: string | undefined): boolean {
  return value !== undefined && value !== '' && value !== '0';
}
