// The validated form of a Kubeless Function: only what the build needs, every field checked.

export type ContentSource = 'text' | 'base64' | 'url';
export type ArchiveKind = 'zip' | 'compressedtar';

export interface ContentType {
  source: ContentSource;
  archive?: ArchiveKind;
  /** `+deps`: the archive holds the deps file itself; spec.deps is not used. */
  depsIncluded: boolean;
}

export interface FunctionEnvVar {
  name: string;
  value: string;
}

export interface FunctionSpec {
  name: string;
  namespace: string;
  uid?: string;
  handler: { module: string; function: string };
  /** Runtime ID and version in one word, e.g. "nodejs14", "python3.8". */
  runtime: string;
  contentType: ContentType;
  /** The source as written in spec.function: text, base64 text or a URL. */
  function: string;
  /** "sha256:<64 lower-case hex>", or absent. */
  checksum?: string;
  /** The content of the dependency file; absent or empty means no dependencies. */
  deps?: string;
  /** Seconds, a positive integer as a string; "180" when the Function does not say. */
  timeout: string;
  /** spec.deployment.spec.template.spec.containers[0].env entries that have a literal value. */
  env: FunctionEnvVar[];
  /** containers[0].image: the Function runs a prebuilt image and is not built. */
  prebuiltImage?: string;
  /** Things the build ignores and the user may want to know (env valueFrom, ...). */
  warnings: string[];
}

/** "namespace/name", how messages name a function. */
export function functionId(spec: { namespace: string; name: string }): string {
  return `${spec.namespace}/${spec.name}`;
}

/** The content type in Kubeless's own spelling, e.g. "base64+zip+deps". */
export function formatContentType(type: ContentType): string {
  return [type.source, type.archive, type.depsIncluded ? 'deps' : undefined].filter(Boolean).join('+');
}
