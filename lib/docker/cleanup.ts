// Removing what one call made in the daemon (its build step's container, its local tag) on every
// path, failures included. The daemon may be the reason the call failed: restarting, or gone for a
// moment. Each removal is retried while the daemon does not answer, until `signal` fires (the
// call's own limit), so a daemon that comes back in time is cleaned and a frozen one cannot hold
// the call past its limit.
import type Dockerode from 'dockerode';
import { sleep } from '../sleep.ts';

const FIRST_RETRY_MS = 200;
const MAX_RETRY_MS = 2_000;
/** How long removing a step's container may take when the caller gives no bound of its own. */
const DEFAULT_CLEANUP_MS = 10_000;

/**
 * Runs `attempt` until it succeeds, fails for good (a 4xx other than 409), or `signal` fires; in
 * the last case the last error is thrown. 404 counts as done: the thing is gone already.
 */
export async function retryCleanup(attempt: (signal: AbortSignal) => Promise<unknown>, signal: AbortSignal): Promise<void> {
  let delay = FIRST_RETRY_MS;
  for (;;) {
    try {
      await attempt(signal);
      return;
    } catch (error) {
      const status = (error as { statusCode?: number }).statusCode;
      if (status === 404) return;
      // 409: removal already in progress or the container still stopping; 5xx and no status: the
      // daemon is restarting or unreachable. Anything else will not change by waiting.
      const transient = status === undefined || status === 409 || status >= 500;
      if (!transient || signal.aborted) throw error;
      // Past the limit the last failure is what the caller hears about, not the limit itself.
      await sleep(delay, signal).catch(() => {
        throw error;
      });
      delay = Math.min(delay * 2, MAX_RETRY_MS);
    }
  }
}

/** Force-removes a container (a build step's), with its anonymous volumes; without `signal`, for at most 10 s from now. */
export function removeContainer(docker: Dockerode, id: string, signal: AbortSignal = AbortSignal.timeout(DEFAULT_CLEANUP_MS)): Promise<void> {
  return retryCleanup((abortSignal) => docker.getContainer(id).remove({ force: true, v: true, abortSignal } as Dockerode.ContainerRemoveOptions), signal);
}
