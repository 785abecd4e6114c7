// The time limit and the caller's AbortSignal, as one signal for a build or push request.
import { BuildAbortedError } from './errors.ts';

/** A signal that fires on the caller's abort or when `timeoutMs` passes, and which of the two it was. */
export function deadline(signal: AbortSignal | undefined, timeoutMs: number | undefined): { signal: AbortSignal; timedOut: () => boolean } {
  const signals: AbortSignal[] = [];
  if (signal) signals.push(signal);
  const timer = timeoutMs ? AbortSignal.timeout(timeoutMs) : undefined;
  if (timer) signals.push(timer);
  return { signal: AbortSignal.any(signals), timedOut: () => Boolean(timer?.aborted && !signal?.aborted) };
}

export function aborted(timedOut: boolean, timeoutMs: number | undefined, what: string, cause: unknown): BuildAbortedError {
  return timedOut
    ? new BuildAbortedError('E_BUILD_TIMEOUT', `the ${what} took longer than ${timeoutMs} ms and was cancelled`, { cause, details: { timeoutMs } })
    : new BuildAbortedError('E_BUILD_ABORTED', `the ${what} was cancelled by the caller`, { cause });
}
