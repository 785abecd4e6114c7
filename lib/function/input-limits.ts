// Limits on a Function given inline (its YAML/JSON text, or an object's inline fields), checked
// before the text is parsed or a field decoded, so that memory stays proportional to a sane input
// whatever is thrown at the builder: a Job with a 1 Gi limit must fail on a typed error, not OOM.
// A Kubernetes object cannot exceed about 1.5 MiB (etcd's request limit), so real Functions are far
// below these; larger sources belong behind a `url` with a checksum.

export const FUNCTION_INPUT_LIMITS = {
  /** The Function text: a file, stdin or BUILDER_FUNCTION, several documents together. */
  maxInputBytes: 4 * 1024 * 1024,
  /** An inline spec.function (text or base64). */
  maxSourceBytes: 4 * 1024 * 1024,
  /** spec.deps, the content of package.json, requirements.txt and the like. */
  maxDepsBytes: 1024 * 1024,
  /** Nesting of mappings and sequences; a Function with a full Deployment spec needs about 15. */
  maxDepth: 64,
  /**
   * YAML/JSON tokens (keys, values, punctuation, line breaks): each costs a few hundred bytes once
   * parsed, so 4 MiB of one-character list items would otherwise take gigabytes.
   */
  maxTokens: 50_000,
  /** YAML aliases; "billion laughs" documents expand a few of them into millions of nodes. */
  maxAliases: 100,
} as const;

export const TOO_LARGE_HINT = 'ship large sources as a url with a checksum (function-content-type url, url+zip or url+compressedtar)';
