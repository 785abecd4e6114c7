// URLs of `url` sources. A URL may carry credentials (user:password@) or a signed query string
// (pre-signed object-store links): messages show only scheme, host and path.

/** The URL, or the reason it cannot be a source URL. */
export function parseSourceUrl(text: string): URL | string {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return 'must be an absolute http:// or https:// URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return `must be an http:// or https:// URL, not ${url.protocol}`;
  }
  return url;
}

/** scheme://host/path without credentials, query or fragment, for messages and logs. */
export function redactUrl(url: URL | string): string {
  try {
    const parsed = typeof url === 'string' ? new URL(url) : url;
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}${parsed.search === '' ? '' : '?…'}`;
  } catch {
    return '(unparseable URL)';
  }
}
