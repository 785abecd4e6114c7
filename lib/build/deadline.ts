// The time limit of one buildFunctionImage() call, in its own module because every step of the
// pipeline shares it: the signal that cancels the work, the later one that ends the cleanup, and the
// typing of whatever a cancelled step throws. The timers are cleared when the call ends, so a
// controller making thousands of calls does not pile up 30-minute timers.
import { aborted, deadline } from '../docker/deadline.ts';
import { BuildAbortedError } from '../docker/errors.ts';

const DEFAULT_TIMEOUT_MS = 30 * 60_000;
/**
 * The end of the limit kept for cleanup (removing a failed step's container, the local tags):
 * the work is cancelled this much earlier (at most a quarter of the limit), so that cleanup too ends
 * by the limit even when the daemon freezes.
 */
const CLEANUP_RESERVE_MS = 5_000;
/** Cleanup after the caller's signal fired, when there is no limit to end it. */
const CLEANUP_AFTER_ABORT_MS = 10_000;

export interface BuildDeadline {
  /** Fires on the caller's abort or when the work's share of the limit is over. */
  signal: AbortSignal;
  /** Fires when the whole limit is over, or a while after the caller's abort: ends the cleanup. */
  cleanupSignal: AbortSignal;
  /** `work`, with whatever it throws once `signal` fired turned into E_BUILD_ABORTED or E_BUILD_TIMEOUT. */
  typed<T>(work: Promise<T>): Promise<T>;
  /** Stops the timers and listeners; call when the build is over. */
  dispose(): void;
}

/** The limit of a build (`timeoutMs` from now, 0: none; default 30 minutes) and the caller's signal, as one. */
export function buildDeadline(callerSignal: AbortSignal | undefined, timeoutMs: number | undefined, what: string): BuildDeadline {
  const limitMs = timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const work = deadline(callerSignal, limitMs - Math.min(CLEANUP_RESERVE_MS, Math.floor(limitMs / 4)));
  const cleanup = cleanupDeadline(callerSignal, limitMs, CLEANUP_AFTER_ABORT_MS);
  return {
    signal: work.signal,
    cleanupSignal: cleanup.signal,
    // Whatever a step throws once the signal fired (an AbortError, the signal's reason, a download's
    // "aborted"), the caller gets E_BUILD_ABORTED or E_BUILD_TIMEOUT.
    async typed<T>(pending: Promise<T>): Promise<T> {
      try {
        return await pending;
      } catch (error) {
        if (!work.signal.aborted) throw error;
        const expected = work.timedOut() ? 'E_BUILD_TIMEOUT' : 'E_BUILD_ABORTED';
        if (error instanceof BuildAbortedError && error.code === expected) throw error;
        throw aborted(work.timedOut(), limitMs, what, error);
      }
    },
    dispose() {
      work.clear();
      cleanup.dispose();
    },
  };
}

/** `work`, or the signal's reason as soon as it fires: a call waiting for another one's build stays cancellable. */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * The limit of the cleanup after a call: the call's own limit (from its start), and at most
 * `afterAbortMs` once the caller's signal fired, so cleanup never outlasts what the caller allowed.
 * `dispose()` when the call is over, so a long-lived caller signal does not collect listeners.
 */
function cleanupDeadline(signal: AbortSignal | undefined, timeoutMs: number | undefined, afterAbortMs: number): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const expire = () => controller.abort(new DOMException('cleanup limit reached', 'TimeoutError'));
  const timers: NodeJS.Timeout[] = [];
  if (timeoutMs) timers.push(setTimeout(expire, timeoutMs).unref());
  const onAbort = () => timers.push(setTimeout(expire, afterAbortMs).unref());
  signal?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    dispose() {
      signal?.removeEventListener('abort', onAbort);
      for (const timer of timers) clearTimeout(timer);
    },
  };
}
