// One build per target image in this process: a second call for an image that is being built waits
// for the first one's result instead of building it again. Its own module because the sharing has
// rules of its own (a joiner stays cancellable; a build its own caller cancelled is not the joiner's
// failure). Across processes, the Kubernetes layer runs one Job per tag, and the registry check
// before the push lets a late builder take the image that is already there.
import { BuildAbortedError } from '../docker/errors.ts';
import { untilAborted } from './deadline.ts';
import type { BuildResult } from './types.ts';

const running = new Map<string, Promise<BuildResult>>();

export interface ShareOptions {
  /** This call's cancellation: stops its wait for another call's build. */
  signal: AbortSignal;
  /** The caller's own signal: when it fired, another call's cancellation is this one's too. */
  callerSignal: AbortSignal | undefined;
  /** Told each time this call waits for another one's build. */
  onJoin(): void;
  /** This call's result from the other call's. */
  joined(result: BuildResult): BuildResult;
}

/** The result of the build of `key` under way in this process, or of `start()` when there is none. */
export async function sharedBuild(key: string, start: () => Promise<BuildResult>, options: ShareOptions): Promise<BuildResult> {
  for (;;) {
    const other = running.get(key);
    if (!other) break;
    options.onJoin();
    try {
      return options.joined(await untilAborted(other, options.signal));
    } catch (error) {
      // The other call was cancelled by its own caller: this one still wants the image.
      if (!(error instanceof BuildAbortedError && error.code === 'E_BUILD_ABORTED') || options.callerSignal?.aborted) throw error;
    }
  }
  const produced = start();
  running.set(key, produced);
  try {
    return await produced;
  } finally {
    running.delete(key);
  }
}
