// The registry engine with an output instead of a registry: the function image is assembled as for a
// push (base manifest and config read by digest, deps and code layers made here) and written to an
// OCI layout or a docker archive, its base layers taken from the local blob cache. Nothing is pushed.
import { functionId } from '../function/spec.ts';
import type { BlobCache } from '../image/blob-cache.ts';
import type { OutputSpec } from '../image/output-spec.ts';
import { writeImageOutput, type OutputResult } from './write-output.ts';
import { assembleFunctionImages, type AppendBuildOptions } from './append-build.ts';
import type { AssembledImage } from './assemble.ts';

export interface OutputBuildOptions extends Omit<AppendBuildOptions, 'platforms'> {
  output: OutputSpec;
  cache: BlobCache;
}

export interface OutputBuildResult {
  written: OutputResult;
  buildMs: number;
  writeMs: number;
}

export async function buildToOutput(options: OutputBuildOptions): Promise<OutputBuildResult> {
  const { output, target, tag, progress } = options;
  const buildStarted = Date.now();
  // One image per output: a multi-platform runtime image gives the plan's platform only.
  const { images } = await assembleFunctionImages({ ...options, platforms: [options.plan.platform] });
  const image = images[0] as AssembledImage;
  const buildMs = Date.now() - buildStarted;
  const writeStarted = Date.now();
  progress({ kind: 'phase', phase: 'write', message: `writing ${target.repository}:${tag} to ${output.spec} (base layers cached in ${options.cache.dir})` });
  const written = await writeImageOutput(output, image, {
    name: `${target.repository}:${tag}`,
    cache: options.cache,
    client: options.client,
    signal: options.signal,
    onProgress: (message) => progress({ kind: 'phase', phase: 'write', message }),
  });
  options.log({ event: 'output-written', level: 'info', function: functionId(options.plan.function), image: `${target.repository}:${tag}`, output: output.spec, manifestDigest: written.manifestDigest, bytes: written.bytes });
  return { written, buildMs, writeMs: Date.now() - writeStarted };
}
