// The one loader of docker configs. The CLI's --docker-config file (or docker's own config.json),
// the build Job's mounted registry Secret and the controller's Secret read through the API differ
// only in where the text is; which candidate wins and how a broken one is reported is decided here.
import { parseDockerConfig, type DockerConfig } from './credentials.ts';

/** One place a docker config may be: a name for messages and the log, and its text (undefined = not there). */
export interface DockerConfigCandidate {
  source: string;
  read: () => string | undefined;
}

export interface LoadedDockerConfig {
  config: DockerConfig | undefined;
  /** The candidate it came from; never its content. Undefined when none was there. */
  source: string | undefined;
}

/**
 * The first candidate that is there, parsed; nothing there = no credentials (the caller decides
 * whether that is an error). `invalid` turns a parse failure into the caller's own error; the
 * parser's messages name keys and fields, never values, so they may be passed on.
 */
export function loadDockerConfig(candidates: DockerConfigCandidate[], invalid?: (source: string, error: Error) => Error): LoadedDockerConfig {
  for (const candidate of candidates) {
    const text = candidate.read();
    if (text === undefined) continue;
    try {
      return { config: parseDockerConfig(text), source: candidate.source };
    } catch (error) {
      throw invalid && error instanceof Error ? invalid(candidate.source, error) : error;
    }
  }
  return { config: undefined, source: undefined };
}
