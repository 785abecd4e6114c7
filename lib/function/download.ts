// Downloads a `url` source: http(s) only, a bounded number of redirects (each checked again),
// a time limit over the whole transfer and a size limit counted on the bytes received, not on
// what Content-Length claims. Every connection, the first and each redirect's, goes only to a
// public address (lib/function/address.ts) unless private ones are allowed: the host name is
// resolved inside the connect step and the socket connects to the very address that was checked,
// so a name that answers differently the second time (DNS rebinding) cannot slip through.
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';
import { Agent, request } from 'undici';
import { BuilderError } from '../errors.ts';
import { allowedAddresses, refusedAddressReason, type AllowedAddresses, type PrivateAddressAllowance } from './address.ts';
import { SourceDownloadError, SourceTooLargeError, SourceUrlRefusedError } from './errors.ts';
import { redactUrl } from './url.ts';

export interface DownloadOptions {
  timeoutMs?: number;
  maxBytes?: number;
  maxRedirects?: number;
  signal?: AbortSignal;
  /**
   * Loopback, link-local, private and other non-public addresses are refused by default, for the
   * URL and every redirect. `true` allows them all (local development); a list of addresses and
   * CIDR ranges (e.g. ["10.20.0.0/16"]) allows only those.
   */
  allowPrivateAddresses?: PrivateAddressAllowance;
  /** Host name → addresses (default: the system resolver). What it returns is checked, then connected to. */
  resolve?: (hostname: string) => Promise<string[]>;
}

const ALLOW_HINT = 'url sources are fetched only from public addresses; for local development allow private ones ' +
  '(--allow-private-addresses, download.allowPrivateAddresses, or kubeless-config "function-url-allow-private-addresses")';

async function systemResolve(hostname: string): Promise<string[]> {
  return (await dnsLookup(hostname, { all: true, order: 'verbatim' })).map((entry) => entry.address);
}

/** Checks each address a download connects to; remembers the refusal, which the connection error would hide. */
class AddressGuard {
  refusal: SourceUrlRefusedError | undefined;
  /** The URL being fetched and how many redirects led to it, for the message. */
  hop = { url: new URL('http://invalid/'), redirects: 0 };
  readonly #fn: string;
  readonly #allowed: AllowedAddresses;
  readonly #resolve: (hostname: string) => Promise<string[]>;

  constructor(fn: string, options: DownloadOptions) {
    this.#fn = fn;
    this.#resolve = options.resolve ?? systemResolve;
    const allowed = allowedAddresses(options.allowPrivateAddresses);
    if (typeof allowed === 'string') {
      throw new BuilderError('E_CONFIG_INVALID', 'user', `download.allowPrivateAddresses ${allowed}`, { details: { option: 'download.allowPrivateAddresses' } });
    }
    this.#allowed = allowed;
  }

  /** Throws when `address` may not be fetched from; `host` is the name it came from. */
  check(host: string, address: string): void {
    const reason = refusedAddressReason(address, this.#allowed);
    if (reason === undefined) return;
    const { url, redirects } = this.hop;
    const what = redirects === 0 ? redactUrl(url) : `redirect ${redirects} (to ${redactUrl(url)})`;
    const via = host === address ? '' : ` (${host})`;
    this.refusal = new SourceUrlRefusedError(this.#fn, `${what} leads to ${address}${via}, which is not a public address (${reason}); ${ALLOW_HINT}`, {
      url: redactUrl(url), host, address, reason, redirects,
    });
    throw this.refusal;
  }

  /** A host given as an address is connected to without a lookup, so it is checked before the request. */
  checkLiteral(url: URL): void {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) !== 0) this.check(host, host);
  }

  /** net.connect's lookup: resolve once, check every address, hand over only checked ones. */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    this.#resolve(hostname).then(
      (found) => {
        const addresses = found.filter((address) => options.family === undefined || options.family === 0 || isIP(address) === options.family);
        if (addresses.length === 0) {
          callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', 0);
          return;
        }
        try {
          for (const address of addresses) this.check(hostname, address);
        } catch (error) {
          callback(error as Error, '', 0);
          return;
        }
        const entries = addresses.map((address) => ({ address, family: isIP(address) }));
        if (options.all) (callback as unknown as (error: null, entries: { address: string; family: number }[]) => void)(null, entries);
        else callback(null, entries[0]!.address, entries[0]!.family);
      },
      (error: Error) => callback(error, '', 0),
    );
  };
}

const DEFAULT_DOWNLOAD_TIMEOUT_MS = 120_000;
const DEFAULT_DOWNLOAD_MAX_BYTES = 128 * 1024 * 1024;
const DEFAULT_DOWNLOAD_MAX_REDIRECTS = 5;

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
  const guard = new AddressGuard(fn, options);
  const agent = new Agent({ connect: { lookup: guard.lookup } });
  try {
    for (let hop = 0; ; hop += 1) {
      const headers: Record<string, string> = { 'user-agent': 'function-image-builder', 'accept-encoding': 'identity' };
      // Credentials from the URL go only to the host the user named, never to a redirect target.
      if (authorization !== undefined && current.origin === origin) headers.authorization = authorization;
      guard.hop = { url: current, redirects: hop };
      guard.checkLiteral(current);
      const response = await request(current, { method: 'GET', headers, signal, dispatcher: agent });
      if (REDIRECTS.has(response.statusCode)) {
        await response.body.dump();
        const location = response.headers.location;
        if (typeof location !== 'string') throw new SourceDownloadError('user', `${subject}: HTTP ${response.statusCode} without a Location header`);
        if (hop >= maxRedirects) throw new SourceDownloadError('user', `${subject}: more than ${maxRedirects} redirects`);
        const next = new URL(location, current);
        if (next.protocol !== 'http:' && next.protocol !== 'https:') {
          throw new SourceUrlRefusedError(fn, `redirect ${hop + 1} from ${redactUrl(current)} goes to a ${next.protocol} URL; only http and https are followed`, {
            url: redactUrl(current), scheme: next.protocol, redirects: hop + 1,
          });
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
    if (guard.refusal !== undefined) throw guard.refusal;
    if (error instanceof BuilderError) throw error;
    if (timeout.aborted) {
      throw new SourceDownloadError('infrastructure', `${subject}: no complete answer within ${timeoutMs} ms`, { cause: error, details: { function: fn, timeoutMs } });
    }
    if (options.signal?.aborted) throw new SourceDownloadError('infrastructure', `${subject}: aborted`, { cause: error });
    const code = (error as { code?: string }).code;
    throw new SourceDownloadError('infrastructure', `${subject}: ${code ?? (error as Error).message}`, { cause: error, details: { function: fn, code } });
  } finally {
    await agent.destroy().catch(() => undefined);
  }
}
