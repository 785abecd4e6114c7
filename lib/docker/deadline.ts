// The time limit and the caller's AbortSignal, as one signal for a build or push request.
import { BuildAbortedError } from './errors.ts';

/**
 * A signal that fires on the caller's abort or when `timeoutMs` passes, and which of the two it was.
 * `clear()` stops the clock once the work is done: an AbortSignal.timeout() would stay scheduled for
 * the whole limit (30 minutes for a build), and a controller checking thousands of Functions a
 * minute would pile up that many timers.
 */
export function deadline(signal: AbortSignal | undefined, timeoutMs: number | undefined): { signal: AbortSignal; timedOut: () => boolean; clear: () => void } {
  const signals: AbortSignal[] = [];
  if (signal) signals.push(signal);
  const clock = new AbortController();
  const timer = timeoutMs ? setTimeout(() => clock.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), timeoutMs).unref() : undefined;
  if (timer) signals.push(clock.signal);
  return { signal: AbortSignal.any(signals), timedOut: () => Boolean(clock.signal.aborted && !signal?.aborted), clear: () => clearTimeout(timer) };
}

export function aborted(timedOut: boolean, timeoutMs: number | undefined, what: string, cause: unknown): BuildAbortedError {
  return timedOut
    ? new BuildAbortedError('E_BUILD_TIMEOUT', `the ${what} took longer than ${timeoutMs} ms and was cancelled`, { cause, details: { timeoutMs } })
    : new BuildAbortedError('E_BUILD_ABORTED', `the ${what} was cancelled by the caller`, { cause });
}

/**
 * The limit of the cleanup after a call: the call's own limit (from its start), and at most
 * `afterAbortMs` once the caller's signal fired, so cleanup never outlasts what the caller allowed.
 * `dispose()` when the call is over, so a long-lived caller signal does not collect listeners.
 */
export function cleanupDeadline(signal: AbortSignal | undefined, timeoutMs: number | undefined, afterAbortMs: number): { signal: AbortSignal; dispose(): void } {
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
