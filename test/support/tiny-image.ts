// A tiny image built from local files only (nothing can be pulled here): FROM scratch with the
// statically linked busybox, so a test has something real to push, pull and run.
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { docker, TEST_LABEL } from './docker.ts';

export const BUSYBOX = process.env.BUSYBOX_BINARY ?? '/bin/busybox';

export interface TinyImage {
  /** repository:tag as built, e.g. 127.0.0.1:40123/fib-rig/tiny:3f9a0c1d */
  image: string;
  repository: string;
  tag: string;
  /** The image ID (sha256:...) in the local Engine. */
  id: string;
  /** Removes the local image (not what was pushed). */
  remove(): Promise<void>;
}

/**
 * Builds `repository:<unique tag>` with /bin/busybox and a small file unique to this build, so a push
 * always uploads at least one new blob. Labelled TEST_LABEL; the caller removes it.
 */
export async function buildTinyImage(repository: string, options: { tag?: string } = {}): Promise<TinyImage> {
  const tag = options.tag ?? randomBytes(6).toString('hex');
  const image = `${repository}:${tag}`;
  const context = mkdtempSync(join(tmpdir(), 'fib-tiny-image-'));
  try {
    copyFileSync(BUSYBOX, join(context, 'busybox'));
    writeFileSync(join(context, 'build-id'), `${image} ${randomBytes(16).toString('hex')}\n`);
    writeFileSync(
      join(context, 'Dockerfile'),
      [
        'FROM scratch',
        'COPY busybox /bin/busybox',
        'COPY build-id /build-id',
        `LABEL ${TEST_LABEL}=tiny-image`,
        'ENTRYPOINT ["/bin/busybox"]',
        'CMD ["cat", "/build-id"]',
        '',
      ].join('\n'),
    );
    // The classic builder: BuildKit is not installed everywhere this runs.
    await docker(['build', '-q', '-t', image, context], { env: { ...process.env, DOCKER_BUILDKIT: '0' } });
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
  const id = (await docker(['image', 'inspect', '--format', '{{.Id}}', image])).trim();
  return {
    image,
    repository,
    tag,
    id,
    async remove() {
      await docker(['rmi', '--force', image]).catch(() => undefined);
    },
  };
}
