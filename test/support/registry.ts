// Real registries for tests: Debian's docker-registry (distribution 2.8) on a loopback port,
// each with its own storage directory, stopped and removed by the returned handle.
//   anonymous  plain HTTP, no auth
//   basic      plain HTTP, htpasswd (bcrypt) Basic auth, user and password made per run
//   tls        HTTPS with a CA and server certificate made per run (anonymous otherwise)
//   token      plain HTTP, Bearer tokens from a token server in this process (see token-server.ts)
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeCa, makeLeaf } from './certs.ts';
import { spawnRigProcess, type RigProcess } from './child-process.ts';
import { exec } from './docker.ts';
import { freePort, waitFor } from './net.ts';
import { startTokenServer, type TokenKeyReference, type TokenServer, type TokenUser } from './token-server.ts';

export type RegistryKind = 'anonymous' | 'basic' | 'tls' | 'token';

export interface RegistryCredentials {
  username: string;
  password: string;
}

export interface RegistryHandle {
  kind: RegistryKind;
  /** host:port, e.g. 127.0.0.1:40123 — the registry part of image references. */
  host: string;
  /** Base URL, http:// or https://. */
  url: string;
  port: number;
  dir: string;
  /** Lines the registry process printed, for diagnosing a failed test. */
  log: string[];
  /** Process id of the registry (a new one after restart()). */
  pid: number;
  /** SIGKILLs the registry process: connections drop, the port refuses, the storage stays. */
  kill(): Promise<void>;
  /** Starts the registry again on the same port and storage (after kill(), or killing it first). */
  restart(): Promise<void>;
  /** basic: the htpasswd user; token: a user allowed pull, push and delete on every repository. */
  username?: string;
  password?: string;
  /** Text of a .dockerconfigjson holding username/password for `host` (basic, token). */
  dockerConfigJson?: string;
  /** tls: PEM file of the CA that signed the registry's certificate, and its text. */
  caPath?: string;
  caPem?: string;
  /** tls: the /etc/docker/certs.d/<host> directory written so the Docker Engine trusts the CA. */
  dockerCertsDir?: string;
  /** token: the realm URL the registry's Bearer challenge names. */
  tokenRealm?: string;
  /** token: the token server, its users (add more with addUser) and a log of what it granted. */
  tokenServer?: TokenServer;
  /** token: ready-made users. */
  users?: { full: TokenUser; pullOnly: TokenUser };
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /** token: lifetime of issued tokens (expires_in). Default 300. */
  tokenTtlSeconds?: number;
  /** token: how the token names its signing key; both are accepted by distribution 2.8. Default 'x5c'. */
  tokenKeyReference?: TokenKeyReference;
}

export const REGISTRY_BINARY = process.env.REGISTRY_BINARY ?? 'docker-registry';
/** Where the Docker Engine looks for per-registry CA files. */
export const DOCKER_CERTS_ROOT = process.env.DOCKER_CERTS_ROOT ?? '/etc/docker/certs.d';

const running = new Set<RegistryHandle>();
/** Registry processes still alive: killed when this process exits, even when a test crashed it. */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
/** Whether this process created DOCKER_CERTS_ROOT, so the last tls registry to stop may remove it again. */
let certsRootCreated = false;

/** Registries started by this process and not stopped yet (for the leftovers check). */
export function runningRegistries(): RegistryHandle[] {
  return [...running];
}

/** The .dockerconfigjson text for one registry host. */
export function dockerConfigJsonFor(host: string, credentials: RegistryCredentials): string {
  const auth = Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64');
  return JSON.stringify({ auths: { [host]: { username: credentials.username, password: credentials.password, auth } } });
}

/**
 * A temporary DOCKER_CONFIG directory whose config.json holds credentials for the registry, so a test
 * can run `docker --config <dir> push`. Without `credentials`: the handle's own user; `null`: none.
 */
export function dockerClientConfig(
  handle: Pick<RegistryHandle, 'host' | 'username' | 'password'>,
  credentials?: RegistryCredentials | null,
): { dir: string; cleanup(): void } {
  const chosen =
    credentials === undefined && handle.username !== undefined && handle.password !== undefined
      ? { username: handle.username, password: handle.password }
      : (credentials ?? undefined);
  const dir = mkdtempSync(join(tmpdir(), 'fib-docker-config-'));
  writeFileSync(join(dir, 'config.json'), chosen ? dockerConfigJsonFor(handle.host, chosen) : '{"auths":{}}', { mode: 0o600 });
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

// Hex: never starts with '-' (read as an option by htpasswd) and needs no quoting anywhere.
function secret(): string {
  return randomBytes(16).toString('hex');
}

/** Status of GET url, trusting `ca` for https. */
export function probe(url: string, options: { ca?: string; headers?: Record<string, string> } = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = url.startsWith('https:') ? httpsRequest : httpRequest;
    const req = request(url, { ca: options.ca, headers: options.headers, timeout: 5_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout on ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

export async function startRegistry(kind: RegistryKind = 'anonymous', options: RegistryOptions = {}): Promise<RegistryHandle> {
  const dir = mkdtempSync(join(tmpdir(), `fib-registry-${kind}-`));
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  const runCleanups = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  };
  try {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const extra: Partial<RegistryHandle> = {};
    const config = [
      'version: 0.1',
      'log: {level: warn, accesslog: {disabled: true}}',
      'storage:',
      `  filesystem: {rootdirectory: ${JSON.stringify(join(dir, 'data'))}}`,
      '  delete: {enabled: true}',
      'http:',
      `  addr: ${host}`,
      `  secret: ${JSON.stringify(secret())}`,
    ];

    if (kind === 'basic') {
      const username = `fib-user-${randomBytes(4).toString('hex')}`;
      const password = secret();
      // bcrypt is the only hash distribution's htpasswd accepts.
      const result = await exec('htpasswd', ['-Bbn', username, password], { timeoutMs: 30_000 });
      if (result.code !== 0) throw new Error(`htpasswd failed (${result.code}): ${result.stderr.trim()}`);
      writeFileSync(join(dir, 'htpasswd'), result.stdout.trim() + '\n');
      config.push('auth:', '  htpasswd:', '    realm: function-image-builder-test', `    path: ${JSON.stringify(join(dir, 'htpasswd'))}`);
      Object.assign(extra, { username, password, dockerConfigJson: dockerConfigJsonFor(host, { username, password }) });
    }

    if (kind === 'tls') {
      const ca = await makeCa(dir, 'ca', `function-image-builder test registry CA ${port}`);
      const server = await makeLeaf(dir, 'server', ca, { commonName: 'localhost', usage: 'server' });
      config.push('  tls:', `    certificate: ${JSON.stringify(server.certPath)}`, `    key: ${JSON.stringify(server.keyPath)}`);
      Object.assign(extra, { caPath: ca.certPath, caPem: ca.certPem });
      const certsDir = join(DOCKER_CERTS_ROOT, host);
      try {
        if (mkdirSync(DOCKER_CERTS_ROOT, { recursive: true }) !== undefined) certsRootCreated = true;
        mkdirSync(certsDir, { recursive: true });
        cleanups.push(() => {
          rmSync(certsDir, { recursive: true, force: true });
          // Only a root this process created, and only once no entry is left in it.
          if (certsRootCreated) {
            try {
              rmdirSync(DOCKER_CERTS_ROOT);
              certsRootCreated = false;
            } catch {
              // not empty: another registry's entry is still there
            }
          }
        });
        writeFileSync(join(certsDir, 'ca.crt'), ca.certPem);
        extra.dockerCertsDir = certsDir;
      } catch (error) {
        // Not root: the Engine will not trust the CA, but 127.0.0.0/8 is an insecure registry range
        // for Docker by default, so pushes still work; tests that need the file check dockerCertsDir.
        if ((error as NodeJS.ErrnoException).code !== 'EACCES' && (error as NodeJS.ErrnoException).code !== 'EROFS') throw error;
      }
    }

    if (kind === 'token') {
      const root = await makeCa(dir, 'token-root', `function-image-builder test token CA ${port}`);
      const signer = await makeLeaf(dir, 'token-signer', root, { commonName: 'function-image-builder test token signer', usage: 'client' });
      // The signer's certificate is in the bundle too, so a `kid` naming its key is trusted as well as an x5c chain.
      writeFileSync(join(dir, 'token-bundle.pem'), root.certPem + signer.certPem);
      const full: TokenUser = { username: `fib-full-${randomBytes(4).toString('hex')}`, password: secret(), actions: ['pull', 'push', 'delete', '*'] };
      const pullOnly: TokenUser = { username: `fib-pull-${randomBytes(4).toString('hex')}`, password: secret(), actions: ['pull'] };
      const service = `function-image-builder-test-registry-${port}`;
      const tokenServer = await startTokenServer({
        issuer: 'function-image-builder-test-token-issuer',
        service,
        signingKeyPem: signer.keyPem,
        signingCertPem: signer.certPem,
        keyReference: options.tokenKeyReference,
        ttlSeconds: options.tokenTtlSeconds,
        users: [full, pullOnly],
      });
      cleanups.push(() => tokenServer.stop());
      config.push(
        'auth:',
        '  token:',
        `    realm: ${tokenServer.realm}`,
        `    service: ${service}`,
        `    issuer: ${tokenServer.issuer}`,
        `    rootcertbundle: ${JSON.stringify(join(dir, 'token-bundle.pem'))}`,
      );
      Object.assign(extra, {
        username: full.username,
        password: full.password,
        dockerConfigJson: dockerConfigJsonFor(host, full),
        tokenRealm: tokenServer.realm,
        tokenServer,
        users: { full, pullOnly },
      });
    }

    writeFileSync(join(dir, 'config.yml'), config.join('\n') + '\n');
    const log: string[] = [];
    const url = `${kind === 'tls' ? 'https' : 'http'}://${host}`;
    // One registry process on the handle's port and storage; kill() and restart() replace it.
    let current: RigProcess | undefined;
    const launch = async () => {
      current = spawnRigProcess(REGISTRY_BINARY, ['serve', join(dir, 'config.yml')], log, children);
      const { child } = current;
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
      await waitFor(`registry on ${url}`, async () => {
        if (child.exitCode !== null) return true;
        const status = await probe(`${url}/v2/`, { ca: extra.caPem });
        return status === 200 || status === 401;
      });
      if (child.exitCode !== null) throw new Error(`registry (${kind}) exited with ${child.exitCode}: ${log.join('\n')}`);
      return child;
    };
    cleanups.push(() => (current ? kill(current.child, current.exited) : undefined));
    const child = await launch();

    let stopped: Promise<void> | undefined;
    const handle: RegistryHandle = {
      kind,
      host,
      url,
      port,
      dir,
      log,
      pid: child.pid!,
      ...extra,
      async kill() {
        if (!current) return;
        current.child.kill('SIGKILL');
        await current.exited;
      },
      async restart() {
        if (current && current.child.exitCode === null && current.child.signalCode === null) await handle.kill();
        handle.pid = (await launch()).pid!;
      },
      stop() {
        stopped ??= (async () => {
          await runCleanups();
          running.delete(handle);
        })();
        return stopped;
      },
    };
    running.add(handle);
    return handle;
  } catch (error) {
    await runCleanups();
    throw error;
  }
}

async function kill(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
