// Turns a Function's source into the files of /kubeless: decode (base64) or download (url),
// verify spec.checksum against those raw bytes, then either one file <module><suffix> or the
// unpacked archive; and finds the deps file (the archive's for +deps, else spec.deps).
import { unpackArchive } from './archive/unpack.ts';
import { withDefaultLimits, type ArchiveLimits } from './archive/limits.ts';
import { decodeBase64Strict } from './base64.ts';
import { downloadSource, type DownloadOptions } from './download.ts';
import { ChecksumMismatchError, FunctionInvalidError, SourceInvalidError } from './errors.ts';
import { regularFile, sha256Hex, type SourceFile } from './files.ts';
import { functionId, type FunctionSpec } from './spec.ts';
import { parseSourceUrl } from './url.ts';

export interface SourceOptions {
  /** The runtime's dependency file name, "" when it has none. */
  depName: string;
  fileNameSuffix: string;
  download?: DownloadOptions;
  limits?: Partial<ArchiveLimits>;
  signal?: AbortSignal;
}

export interface DepsFile {
  content: Buffer;
  sha256: string;
  /** true: it came out of the archive (+deps) and is among the files already. */
  fromArchive: boolean;
}

export interface MaterialisedSource {
  /** Sorted by path. With +deps they include the deps file. */
  files: SourceFile[];
  deps?: DepsFile;
  /** sha256 hex of the raw source bytes (what spec.checksum covers). */
  sha256: string;
  warnings: string[];
}

/** The raw bytes spec.checksum covers: the text, the decoded base64, or the downloaded body. */
async function readSourceBytes(spec: FunctionSpec, options: { download?: DownloadOptions; signal?: AbortSignal } = {}): Promise<Buffer> {
  const fn = functionId(spec);
  switch (spec.contentType.source) {
    case 'text':
      return Buffer.from(spec.function, 'utf8');
    case 'base64': {
      const bytes = decodeBase64Strict(spec.function);
      if (bytes === undefined) throw new FunctionInvalidError(fn, 'spec.function', 'is not valid base64');
      return bytes;
    }
    case 'url': {
      const url = parseSourceUrl(spec.function);
      if (typeof url === 'string') throw new FunctionInvalidError(fn, 'spec.function', url);
      const download = { ...options.download };
      if (options.signal !== undefined) download.signal = options.signal;
      return downloadSource(fn, url, download);
    }
  }
}

function verifyChecksum(spec: FunctionSpec, bytes: Buffer): string {
  const actual = `sha256:${sha256Hex(bytes)}`;
  if (spec.checksum !== undefined && spec.checksum !== actual) {
    throw new ChecksumMismatchError(functionId(spec), spec.checksum, actual);
  }
  return actual;
}

export async function materialiseSources(spec: FunctionSpec, options: SourceOptions): Promise<MaterialisedSource> {
  const bytes = await readSourceBytes(spec, options);
  return sourceFromBytes(spec, bytes, options);
}

/** The files of an already read (and possibly downloaded) source. */
async function sourceFromBytes(spec: FunctionSpec, bytes: Buffer, options: SourceOptions): Promise<MaterialisedSource> {
  const fn = functionId(spec);
  const checksum = verifyChecksum(spec, bytes);
  const warnings: string[] = [];
  const moduleFile = spec.handler.module + options.fileNameSuffix;
  let files: SourceFile[];
  if (spec.contentType.archive === undefined) {
    files = [regularFile(moduleFile, bytes)];
  } else {
    files = await unpackArchive(fn, bytes, spec.contentType.archive, withDefaultLimits(options.limits));
    if (files.length === 0) throw new SourceInvalidError(fn, 'the archive holds no files');
    if (options.fileNameSuffix !== '' && !files.some((file) => file.path === moduleFile)) {
      warnings.push(`the archive has no ${moduleFile} at its top level, which the handler ${spec.handler.module}.${spec.handler.function} usually loads`);
    }
  }

  let deps: DepsFile | undefined;
  const declared = spec.deps;
  if (spec.contentType.depsIncluded) {
    if (options.depName === '') {
      throw new FunctionInvalidError(fn, 'spec.function-content-type', `has +deps but runtime ${spec.runtime} has no dependency file`);
    }
    const file = files.find((candidate) => candidate.path === options.depName);
    if (file === undefined || file.type !== 'file') {
      throw new FunctionInvalidError(fn, 'spec.function', `the archive must hold ${options.depName} at its top level, since the content type has +deps`);
    }
    if (declared !== undefined && Buffer.compare(Buffer.from(declared, 'utf8'), file.content) !== 0) {
      throw new FunctionInvalidError(fn, 'spec.deps', `differs from the archive's ${options.depName}; with +deps the archive's file is used, so leave spec.deps empty`);
    }
    deps = { content: file.content, sha256: file.sha256, fromArchive: true };
  } else if (declared !== undefined) {
    if (options.depName === '') {
      throw new FunctionInvalidError(fn, 'spec.deps', `is set but runtime ${spec.runtime} has no dependency file`);
    }
    const content = Buffer.from(declared, 'utf8');
    deps = { content, sha256: sha256Hex(content), fromArchive: false };
    if (files.some((file) => file.path === options.depName)) {
      // Kubeless wrote spec.deps over the archive's copy; the same happens here.
      files = files.filter((file) => file.path !== options.depName);
      warnings.push(`the archive's ${options.depName} is replaced by spec.deps (add +deps to the content type to use the archive's)`);
    }
  }
  const result: MaterialisedSource = { files, sha256: checksum.slice('sha256:'.length), warnings };
  if (deps !== undefined) result.deps = deps;
  return result;
}
