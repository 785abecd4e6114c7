// A Docker token server (the "Bearer realm" of a registry) in the test process: checks Basic or
// OAuth2 password credentials and issues ES256 JWTs that distribution 2.8 verifies against its
// `auth.token.rootcertbundle`. Grants only the intersection of the requested scope and the user's
// rights, as real token servers do, so tests can tell "authenticated" from "allowed".
import { createHash, createPrivateKey, createPublicKey, randomBytes, randomUUID, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface TokenUser {
  username: string;
  password: string;
  /** Actions this user may be granted, e.g. ['pull'] or ['pull', 'push', 'delete']; '*' allows `registry:catalog:*`. */
  actions: string[];
  /** Repository patterns the actions apply to: exact names or prefixes ending in '*'. Default ['*'] (all). */
  repositories?: string[];
}

export interface GrantedAccess {
  type: string;
  name: string;
  actions: string[];
}

/** What the token server was asked and what it granted; never holds a password or token. */
export interface TokenRequest {
  method: 'GET' | 'POST';
  /** Empty for an anonymous request. */
  username: string;
  scopes: string[];
  granted: GrantedAccess[];
  status: number;
}

/** How the token names its signing key to the registry. */
export type TokenKeyReference = 'x5c' | 'kid';

export interface TokenServerOptions {
  issuer: string;
  service: string;
  /** PEM key that signs tokens (EC P-256). */
  signingKeyPem: string;
  /** PEM certificate of that key; it or its issuer must be in the registry's rootcertbundle. */
  signingCertPem: string;
  keyReference?: TokenKeyReference;
  ttlSeconds?: number;
  users?: TokenUser[];
  /** Repository patterns (exact names or prefixes ending in '*') anyone, even anonymous, may pull, as on Docker Hub. */
  publicRepositories?: string[];
}

export interface TokenServer {
  /** The realm URL the registry's challenge names: http://127.0.0.1:PORT/token */
  realm: string;
  port: number;
  issuer: string;
  service: string;
  ttlSeconds: number;
  users: Map<string, TokenUser>;
  addUser(user: TokenUser): TokenUser;
  /** The public repository patterns; tests may add to it while the server runs. */
  publicRepositories: string[];
  requests: TokenRequest[];
  stop(): Promise<void>;
}

const running = new Set<TokenServer>();

/** Token servers started by this process and not stopped yet (for the leftovers check). */
export function runningTokenServers(): TokenServer[] {
  return [...running];
}

/**
 * The key ID libtrust (used by distribution 2.8) gives a public key: SHA-256 of its DER
 * SubjectPublicKeyInfo, first 240 bits, base32 without padding, in ':'-separated groups of four.
 */
export function libtrustKeyId(key: KeyObject | string): string {
  const publicKey = typeof key === 'string' ? createPublicKey(key) : key.type === 'private' ? createPublicKey(key) : key;
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const encoded = base32(createHash('sha256').update(der).digest().subarray(0, 30));
  return encoded.match(/.{1,4}/g)!.join(':');
}

function base32(bytes: Buffer): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** Parses `type[(class)]:name:actions`; the name may itself hold ':' (e.g. a host with a port). */
function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last <= first) return undefined;
  return {
    type: scope.slice(0, first).replace(/\(.*\)$/, ''),
    name: scope.slice(first + 1, last),
    actions: scope.slice(last + 1).split(',').filter(Boolean),
  };
}

function matches(patterns: string[], name: string): boolean {
  return patterns.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : p === name));
}

/** What `user` (undefined: anonymous) gets of `scopes`; pull on a public repository is everyone's. */
function grant(user: TokenUser | undefined, scopes: string[], publicRepositories: string[]): GrantedAccess[] {
  const granted: GrantedAccess[] = [];
  for (const scope of scopes) {
    const parsed = parseScope(scope);
    if (!parsed) continue;
    let actions: string[] = [];
    if (parsed.type === 'repository') {
      if (user && matches(user.repositories ?? ['*'], parsed.name)) actions = parsed.actions.filter((a) => user.actions.includes(a));
      if (matches(publicRepositories, parsed.name) && parsed.actions.includes('pull')) actions.push('pull');
    } else if (user && parsed.type === 'registry' && parsed.name === 'catalog') {
      actions = parsed.actions.filter((a) => a === '*' && user.actions.includes('*'));
    }
    if (actions.length > 0) granted.push({ type: parsed.type, name: parsed.name, actions: [...new Set(actions)] });
  }
  return granted;
}

export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const ttlSeconds = options.ttlSeconds ?? 300;
  const keyReference = options.keyReference ?? 'x5c';
  const signingKey = createPrivateKey(options.signingKeyPem);
  const certificate = new X509Certificate(options.signingCertPem);
  const header = {
    typ: 'JWT',
    alg: 'ES256',
    ...(keyReference === 'x5c' ? { x5c: [certificate.raw.toString('base64')] } : { kid: libtrustKeyId(certificate.publicKey) }),
  };
  const users = new Map<string, TokenUser>();
  const refreshTokens = new Map<string, string>();
  const requests: TokenRequest[] = [];
  const publicRepositories = [...(options.publicRepositories ?? [])];

  const issue = (username: string, access: GrantedAccess[]) => {
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: options.issuer,
      sub: username,
      aud: options.service,
      exp: now + ttlSeconds,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    // JWS ES256 wants the raw r||s signature, not DER.
    const signature = sign('sha256', Buffer.from(signingInput), { key: signingKey, dsaEncoding: 'ieee-p1363' });
    return { token: `${signingInput}.${base64url(signature)}`, issuedAt: new Date(now * 1000).toISOString() };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const reply = (status: number, body: object, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    const unauthorized = (record: Omit<TokenRequest, 'status' | 'granted'>) => {
      requests.push({ ...record, granted: [], status: 401 });
      reply(401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] }, {
        'www-authenticate': 'Basic realm="function-image-builder test token server"',
      });
    };
    if (url.pathname !== '/token') return reply(404, { errors: [{ code: 'NOT_FOUND', message: 'not found' }] });

    if (req.method === 'GET') {
      const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
      const service = url.searchParams.get('service');
      if (service !== null && service !== options.service) {
        return reply(400, { errors: [{ code: 'INVALID_REQUEST', message: `unknown service ${service}` }] });
      }
      let user: TokenUser | undefined;
      let username = '';
      const authorization = req.headers.authorization;
      if (authorization) {
        const match = /^Basic\s+(\S+)$/i.exec(authorization);
        const decoded = match ? Buffer.from(match[1]!, 'base64').toString() : '';
        const colon = decoded.indexOf(':');
        username = colon >= 0 ? decoded.slice(0, colon) : '';
        const candidate = users.get(username);
        if (!candidate || colon < 0 || candidate.password !== decoded.slice(colon + 1)) {
          return unauthorized({ method: 'GET', username, scopes });
        }
        user = candidate;
      }
      const granted = grant(user, scopes, publicRepositories);
      const { token, issuedAt } = issue(username, granted);
      const body: Record<string, unknown> = { token, access_token: token, expires_in: ttlSeconds, issued_at: issuedAt };
      if (user && url.searchParams.get('offline_token') === 'true') {
        const refresh = randomBytes(24).toString('base64url');
        refreshTokens.set(refresh, username);
        body.refresh_token = refresh;
      }
      requests.push({ method: 'GET', username, scopes, granted, status: 200 });
      return reply(200, body);
    }

    if (req.method === 'POST') {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const form = new URLSearchParams(Buffer.concat(chunks).toString());
      const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
      const service = form.get('service');
      if (service !== null && service !== options.service) {
        return reply(400, { error: 'invalid_request', error_description: `unknown service ${service}` });
      }
      let username = '';
      const grantType = form.get('grant_type');
      if (grantType === 'password') {
        username = form.get('username') ?? '';
        const candidate = users.get(username);
        if (!candidate || candidate.password !== form.get('password')) return unauthorized({ method: 'POST', username, scopes });
      } else if (grantType === 'refresh_token') {
        const owner = refreshTokens.get(form.get('refresh_token') ?? '');
        if (owner === undefined || !users.has(owner)) return unauthorized({ method: 'POST', username, scopes });
        username = owner;
      } else {
        return reply(400, { error: 'unsupported_grant_type', error_description: `grant_type ${grantType ?? '(none)'}` });
      }
      const user = users.get(username);
      const granted = grant(user, scopes, publicRepositories);
      const { token, issuedAt } = issue(username, granted);
      const body: Record<string, unknown> = {
        access_token: token,
        expires_in: ttlSeconds,
        issued_at: issuedAt,
        scope: granted.map((g) => `${g.type}:${g.name}:${g.actions.join(',')}`).join(' '),
      };
      if (grantType === 'refresh_token') {
        body.refresh_token = form.get('refresh_token');
      } else if (form.get('access_type') === 'offline') {
        const refresh = randomBytes(24).toString('base64url');
        refreshTokens.set(refresh, username);
        body.refresh_token = refresh;
      }
      requests.push({ method: 'POST', username, scopes, granted, status: 200 });
      return reply(200, body);
    }
    reply(405, { errors: [{ code: 'UNSUPPORTED', message: `method ${req.method}` }] });
  };

  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`token server error: ${(error as Error).message}`);
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('token server has no address');
  const port = address.port;

  const tokenServer: TokenServer = {
    realm: `http://127.0.0.1:${port}/token`,
    port,
    issuer: options.issuer,
    service: options.service,
    ttlSeconds,
    users,
    addUser(user) {
      users.set(user.username, user);
      return user;
    },
    publicRepositories,
    requests,
    async stop() {
      running.delete(tokenServer);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  for (const user of options.users ?? []) tokenServer.addUser(user);
  running.add(tokenServer);
  return tokenServer;
}
