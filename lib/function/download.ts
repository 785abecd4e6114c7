// Downloads a `url` source: http(s) only, a bounded number of redirects (each checked again),
// a time limit over the whole transfer and a size limit counted on the bytes received, not on
// what Content-Length claims.
import { request } from 'undici';
import { SourceDownloadError, SourceTooLargeError } from './errors.ts';
import { redactUrl } from './url.ts';

export interface DownloadOptions {
  timeoutMs?: number;
  maxBytes?: number;
  maxRedirects?: number;
  signal?: AbortSignal;
}

export const DEFAULT_DOWNLOAD_TIMEOUT_MS = 120_000;
export const DEFAULT_DOWNLOAD_MAX_BYTES = 128 * 1024 * 1024;
export const DEFAULT_DOWNLOAD_MAX_REDIRECTS = 5;

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export async function downloadSource(fn: string, url: URL, options: DownloadOptions = {}): Promise<Buffer> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_DOWNLOAD_TIMEOUT_MS;
  const maxBytes = options.maxBytes ?? DEFAULT_DOWNLOAD_MAX_BYTES;
  const maxRedirects = options.maxRedirects ?? DEFAULT_DOWNLOAD_MAX_REDIRECTS;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout]);
  const subject = `function ${fn}: downloading spec.function from ${redactUrl(url)}`;
  const origin = url.origin;
  const authorization = url.username === '' ? undefined
    : `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString('base64')}`;

  let current = new URL(url.href);
  current.username = '';
  current.password = '';
  try {
    for (let hop = 0; ; hop += 1) {
      const headers: Record<string, string> = { 'user-agent': 'function-image-builder', 'accept-encoding': 'identity' };
      // Credentials from the URL go only to the host the user named, never to a redirect target.
      if (authorization !== undefined && current.origin === origin) headers.authorization = authorization;
      const response = await request(current, { method: 'GET', headers, signal });
      if (REDIRECTS.has(response.statusCode)) {
        await response.body.dump();
        const location = response.headers.location;
        if (typeof location !== 'string') throw new SourceDownloadError('user', `${subject}: HTTP ${response.statusCode} without a Location header`);
        if (hop >= maxRedirects) throw new SourceDownloadError('user', `${subject}: more than ${maxRedirects} redirects`);
        const next = new URL(location, current);
        if (next.protocol !== 'http:' && next.protocol !== 'https:') {
          throw new SourceDownloadError('user', `${subject}: redirected to a ${next.protocol} URL; only http and https are followed`);
        }
        current = next;
        continue;
      }
      if (response.statusCode !== 200) {
        await response.body.dump().catch(() => undefined);
        // 4xx: the URL or its access is wrong and stays wrong; 408, 429 and 5xx may pass later.
        const userFault = response.statusCode >= 400 && response.statusCode < 500 && response.statusCode !== 408 && response.statusCode !== 429;
        throw new SourceDownloadError(userFault ? 'user' : 'infrastructure', `${subject}: the server answered HTTP ${response.statusCode}`, {
          details: { function: fn, url: redactUrl(current), status: response.statusCode },
        });
      }
      const length = Number(response.headers['content-length']);
      if (Number.isFinite(length) && length > maxBytes) {
        response.body.destroy();
        throw new SourceTooLargeError(`${subject}: the source is ${length} bytes, more than the limit of ${maxBytes}`, { details: { function: fn, maxBytes } });
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of response.body) {
        size += (chunk as Buffer).length;
        if (size > maxBytes) {
          response.body.destroy();
          throw new SourceTooLargeError(`${subject}: the source is more than the limit of ${maxBytes} bytes`, { details: { function: fn, maxBytes } });
        }
        chunks.push(chunk as Buffer);
      }
      return Buffer.concat(chunks);
    }
  } catch (error) {
    if (error instanceof SourceDownloadError || error instanceof SourceTooLargeError) throw error;
    if (timeout.aborted) {
      throw new SourceDownloadError('infrastructure', `${subject}: no complete answer within ${timeoutMs} ms`, { cause: error, details: { function: fn, timeoutMs } });
    }
    if (options.signal?.aborted) throw new SourceDownloadError('infrastructure', `${subject}: aborted`, { cause: error });
    const code = (error as { code?: string }).code;
    throw new SourceDownloadError('infrastructure', `${subject}: ${code ?? (error as Error).message}`, { cause: error, details: { function: fn, code } });
  }
}
