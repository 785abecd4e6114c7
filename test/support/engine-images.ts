// Images a pipeline test makes in the shared Docker Engine, found and removed again by one label
// value unique to the test file: every image built FROM a labelled base inherits the label,
// intermediate (cache) images included, so nothing this file built outlives it.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import tar from 'tar-stream';
import { docker, TEST_LABEL } from './docker.ts';
import { BUSYBOX } from './tiny-image.ts';

export interface ImageScope {
  /** `TEST_LABEL=<value>`: put on base images so everything built from them carries it. */
  label: string;
  value: string;
  /** Removes every image carrying the label, children before parents. */
  cleanup(): Promise<void>;
}

export function imageScope(name: string): ImageScope {
  const value = `${name}-${randomBytes(4).toString('hex')}`;
  return {
    label: `${TEST_LABEL}=${value}`,
    value,
    async cleanup() {
      for (let round = 0; round < 5; round++) {
        const out = await docker(['images', '-a', '--no-trunc', '--filter', `label=${TEST_LABEL}=${value}`, '--format', '{{.ID}} {{.CreatedAt}}']);
        const ids = [...new Set(out.split('\n').filter(Boolean))]
          .map((l) => ({ id: l.split(' ')[0] ?? '', created: l.slice(l.indexOf(' ') + 1) }))
          .sort((a, b) => b.created.localeCompare(a.created));
        if (ids.length === 0) return;
        for (const { id } of ids) await docker(['rmi', '--force', id]).catch(() => undefined);
      }
    },
  };
}

/** A build context (tar) holding `files`; `busybox: true` adds the static busybox as ./busybox. */
export async function contextTar(files: Record<string, string | Buffer>, options: { busybox?: boolean } = {}): Promise<Buffer> {
  const pack = tar.pack();
  const entries: [string, string | Buffer, number][] = Object.entries(files).map(([n, c]) => [n, c, 0o644]);
  if (options.busybox) entries.push(['busybox', readFileSync(BUSYBOX), 0o755]);
  for (const [name, content, mode] of entries) pack.entry({ name, mode, mtime: new Date(0) }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Containers (any state) created from `image` or an image built on it. */
export async function containersFrom(image: string): Promise<string[]> {
  const out = await docker(['ps', '-a', '-q', '--filter', `ancestor=${image}`]);
  return out.split('\n').filter(Boolean);
}
