// Upload sessions opened ahead of need. The registry API has no one-request upload that the common
// registries accept (distribution 2.8 answers a POST with a digest and a body as a plain session
// start and drops the body), so every new blob costs POST then PUT. The POSTs do not depend on the
// blob, so they are sent while the build still reads the base and the deps record and makes the
// code layer: the PUTs then follow at once, and the push's critical path is one round trip shorter.
import type { BuildLog } from '../build/types.ts';
import type { RegistryClient } from '../registry/client.ts';

export interface UploadSessions {
  /** A session opened beforehand, or undefined when none is left (or opening it failed): open one then. */
  take(): Promise<string | undefined>;
  /** Cancels the sessions nobody took, so the registry can drop them. */
  release(): Promise<void>;
}

export function openUploadSessions(client: RegistryClient, repository: string, count: number, log: BuildLog): UploadSessions {
  // A session that could not be opened is only a lost head start: the upload opens its own.
  const pending = Array.from({ length: count }, () =>
    client.startUpload(repository).catch((error: unknown) => {
      log({ event: 'upload-session-failed', level: 'debug', repository, message: String(error) });
      return undefined;
    }),
  );
  return {
    take: async () => pending.shift(),
    release: async () => {
      const unused = pending.splice(0);
      await Promise.all(unused.map(async (session) => {
        const url = await session;
        if (url !== undefined) await client.cancelUpload(url).catch(() => undefined);
      }));
    },
  };
}
