// The Job image of Dockerfile.builder, built from this checkout for the tests, on the rig's offline
// Node image (the nodejs installation image: Node 24 + npm, no registry access) through the
// NODE_IMAGE build arg. The build context carries node_modules, so nothing is downloaded.
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { docker, exec, TEST_LABEL } from './docker.ts';
import { buildRuntimeImage } from './runtime-images.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');

export interface BuilderImage {
  /** fib-builder-test/<random>:latest */
  image: string;
  /** The NODE_IMAGE it was built on. */
  nodeImage: string;
  seconds: number;
  /** Removes the image and its build cache (the intermediate images of this build only). */
  remove(): Promise<void>;
}

export async function buildBuilderImage(): Promise<BuilderImage> {
  const started = performance.now();
  const nodeImage = (await buildRuntimeImage('nodejs-install')).tag;
  const image = `fib-builder-test/${randomBytes(5).toString('hex')}:latest`;
  const result = await exec(
    'docker',
    ['build', '--force-rm', '-f', 'Dockerfile.builder', '--build-arg', `NODE_IMAGE=${nodeImage}`, '--label', `${TEST_LABEL}=builder-image`, '-t', image, '.'],
    { cwd: ROOT, env: { ...process.env, DOCKER_BUILDKIT: '0' }, timeoutMs: 600_000 },
  );
  // Every layer this build made (the compile stage's are no parents of the result, and a failed build
  // leaves its own), but never the base image a FROM step names.
  const layers = result.stdout
    .split(/^Step \d+\/\d+ : /m)
    .filter((step) => !/^(FROM|ARG)\b/.test(step))
    .flatMap((step) => [...step.matchAll(/^ ---> ([0-9a-f]{12})$/gm)].map((m) => m[1]!));
  const remove = async () => {
    await exec('docker', ['rmi', image]);
    for (const id of layers.reverse()) await exec('docker', ['rmi', id]);
  };
  if (result.code !== 0) {
    await remove();
    throw new Error(`docker build -f Dockerfile.builder failed (${result.code}):\n${result.stdout.slice(-3000)}\n${result.stderr.slice(-2000)}`);
  }
  await docker(['image', 'inspect', image]);
  return { image, nodeImage, seconds: (performance.now() - started) / 1000, remove };
}
