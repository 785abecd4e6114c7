// The one cancellable wait of the library: retries, backoffs and polls all use it.

/**
 * Resolves after `ms`; rejects with the signal's own reason as soon as it fires (not a generic
 * AbortError), so that a caller can still tell its deadline from a cancellation.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
