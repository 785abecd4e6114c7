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
