// Where an image is written instead of a registry: `oci:DIR` (an OCI image layout) or
// `docker-archive:FILE` (a tarball `docker load` reads), in the transport syntax skopeo uses.
// Checked before anything is built, so a bad spec or an unusable path costs nothing; only the final
// rename into place (engine/write-output.ts) can still be refused once the image is written.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { BuilderError, type ErrorKind } from '../errors.ts';

export type OutputFormat = 'oci' | 'docker-archive';

export interface OutputSpec {
  format: OutputFormat;
  /** Absolute path of the layout directory or the archive file. */
  path: string;
  /** The spec as given, for messages. */
  spec: string;
}

export class OutputSpecError extends BuilderError {
  /** `kind` infrastructure: the path was fine but the file system failed it (an I/O error renaming into place). */
  constructor(spec: string, problem: string, options: { cause?: unknown; kind?: ErrorKind } = {}) {
    super('E_OUTPUT_INVALID', options.kind ?? 'user', `output "${spec}": ${problem}`, { cause: options.cause, details: { output: spec } });
  }
}

const FORMATS: Record<string, OutputFormat> = { oci: 'oci', 'docker-archive': 'docker-archive' };

/** `oci:DIR` or `docker-archive:FILE`, a relative path taken from `cwd`. */
export function parseOutputSpec(spec: string, cwd: string = process.cwd()): OutputSpec {
  const colon = spec.indexOf(':');
  const format = colon === -1 ? undefined : FORMATS[spec.slice(0, colon)];
  if (format === undefined) {
    throw new OutputSpecError(spec, 'write oci:DIR (an OCI image layout) or docker-archive:FILE (a tarball for docker load)');
  }
  const path = spec.slice(colon + 1);
  if (path === '') throw new OutputSpecError(spec, `give the ${format === 'oci' ? 'directory' : 'file'} after "${format}:"`);
  // skopeo reads oci:DIR:REF and docker-archive:FILE:NAME; here the name is always the function's tag,
  // so a second colon would silently become part of the path.
  if (path.includes(':')) {
    throw new OutputSpecError(spec, `the path may not contain ":" (the image's name is the function's own name and tag; a ${format}:PATH:NAME form is not taken)`);
  }
  return { format, path: resolve(cwd, path), spec };
}

/**
 * Throws when the spec's path cannot take the output: its parent directory must exist; `oci:DIR` must
 * be missing, empty or an OCI layout (which is replaced); `docker-archive:FILE` must not be a directory.
 */
export function checkOutputPath(output: OutputSpec): void {
  const parent = dirname(output.path);
  if (!isDirectory(parent)) throw new OutputSpecError(output.spec, `the directory ${parent} does not exist; create it first`);
  if (!existsSync(output.path)) return;
  if (output.format === 'docker-archive') {
    if (isDirectory(output.path)) throw new OutputSpecError(output.spec, `${output.path} is a directory; name the archive file to write, e.g. ${output.path}/image.tar`);
    return;
  }
  if (!isDirectory(output.path)) throw new OutputSpecError(output.spec, `${output.path} exists and is not a directory`);
  const entries = readdirSync(output.path);
  if (entries.length > 0 && !entries.includes('oci-layout')) {
    throw new OutputSpecError(output.spec, `${output.path} is neither empty nor an OCI image layout; name a new directory (an existing layout is replaced)`);
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
