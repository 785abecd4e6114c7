// An HTTP proxy in front of a real registry that can answer some requests itself (503s, 429s,
// redirects, bodies that stall) and rewrite the registry's absolute upload Locations into relative
// ones, so tests see how the client handles those answers from a registry that otherwise behaves for
// real. It can listen with HTTPS, pad the registry's error bodies, and counts the TCP connections
// clients open to it.
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';

export interface ProxiedRequest {
  method: string;
  /** Path and query as received. */
  path: string;
  /** Whether an Authorization header came with it (the value is not kept). */
  authorized: boolean;
  /** The Accept header as sent. */
  accept: string | undefined;
  /** Status the client got back. */
  status: number;
  /** When the request arrived, in performance.now() milliseconds: gaps between retries show the client's backoff. */
  at: number;
}

export interface FaultAnswer {
  /** 0 with `reset`: the connection is dropped without an answer. */
  status: number;
  reset?: boolean;
  /** The request is read and never answered (the connection stays open until stop()). */
  hang?: boolean;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /**
   * Send the headers (with the whole body's Content-Length) and only this many bytes of the body, then
   * nothing until stop(): a registry or storage backend that stalls mid-transfer.
   */
  stallAfter?: number;
}

export interface FaultProxyOptions {
  /** Called for every request; an answer is sent instead of forwarding. `n` counts matching calls per path. */
  intercept?: (request: IncomingMessage, n: number) => FaultAnswer | undefined;
  /** Turn absolute Location headers of the registry into paths. */
  relativeLocations?: boolean;
  /** Listen with HTTPS using this PEM certificate and key (the registry behind is still reached over HTTP). */
  tls?: { cert: string; key: string };
  /**
   * Append this many bytes of whitespace (still valid JSON) to every error body the registry sends.
   * Past undici's 64 KiB stream buffer, a body nobody reads holds its connection, so a client that
   * forgets one opens new connections, which `connections` shows.
   */
  padErrorBodies?: number;
}

export interface FaultProxy {
  url: string;
  host: string;
  port: number;
  requests: ProxiedRequest[];
  /** TCP connections accepted so far: a client that reuses its connections keeps this small. */
  readonly connections: number;
  stop(): Promise<void>;
}

export async function startFaultProxy(target: string, options: FaultProxyOptions = {}): Promise<FaultProxy> {
  const upstream = new URL(target);
  const requests: ProxiedRequest[] = [];
  const seen = new Map<string, number>();
  const sockets = new Set<Socket>();
  let connections = 0;
  let origin = '';

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    const key = `${req.method} ${path.split('?')[0]}`;
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    const at = performance.now();
    const record = (status: number) => requests.push({ method: req.method ?? '', path, authorized: req.headers.authorization !== undefined, accept: req.headers.accept, status, at });
    const answer = options.intercept?.(req, n);
    if (answer?.reset) {
      record(0);
      req.socket.destroy();
      return;
    }
    if (answer?.hang) {
      req.resume();
      record(0);
      return;
    }
    if (answer) {
      req.resume();
      record(answer.status);
      const body = Buffer.from(answer.body ?? '');
      if (answer.stallAfter !== undefined) {
        res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers, 'content-length': String(body.length) });
        res.write(body.subarray(0, answer.stallAfter));
        return;
      }
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(body);
      return;
    }
    const headers = { ...req.headers, host: upstream.host };
    const forward = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path, headers },
      (upstreamResponse) => {
        const responseHeaders = { ...upstreamResponse.headers };
        const location = responseHeaders.location;
        if (typeof location === 'string') {
          const absolute = new URL(location, upstream);
          if (absolute.host === upstream.host) {
            responseHeaders.location = options.relativeLocations ? absolute.pathname + absolute.search : origin + absolute.pathname + absolute.search;
          }
        }
        const status = upstreamResponse.statusCode ?? 502;
        record(status);
        if (options.padErrorBodies && status >= 400 && req.method !== 'HEAD') {
          const chunks: Buffer[] = [];
          upstreamResponse.on('data', (chunk: Buffer) => chunks.push(chunk));
          upstreamResponse.on('end', () => {
            const body = Buffer.concat([...chunks, Buffer.alloc(options.padErrorBodies!, ' ')]);
            delete responseHeaders['transfer-encoding'];
            res.writeHead(status, { ...responseHeaders, 'content-length': String(body.length) });
            res.end(body);
          });
          return;
        }
        res.writeHead(status, responseHeaders);
        upstreamResponse.pipe(res);
      },
    );
    forward.on('error', (error) => {
      record(502);
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy: ${error.message}`);
    });
    req.pipe(forward);
  };

  const server: Server = options.tls ? createHttpsServer(options.tls, handle) : createServer(handle);
  server.on('connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('proxy has no address');
  origin = `${options.tls ? 'https' : 'http'}://127.0.0.1:${address.port}`;
  return {
    url: origin,
    host: `127.0.0.1:${address.port}`,
    port: address.port,
    requests,
    get connections() {
      return connections;
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
