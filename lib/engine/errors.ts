// Typed failures of the registry engine's own decisions (the registry and daemon steps it uses have
// their own error classes).
import { BuilderError, type BuilderErrorOptions, type ErrorKind } from '../errors.ts';

export type EngineErrorCode =
  /** runInstall: false, an install/compile step is needed and no deps layer is recorded for it. */
  | 'E_INSTALL_REQUIRED'
  /** The install step has to run locally and no Docker Engine answers. */
  | 'E_INSTALL_NO_DOCKER'
  /** An engine name or an option the chosen engine cannot honour. */
  | 'E_ENGINE_OPTION';

export class EngineError extends BuilderError {
  constructor(code: EngineErrorCode, kind: ErrorKind, message: string, options: BuilderErrorOptions = {}) {
    super(code, kind, message, options);
  }
}

export type BuildEngine = 'docker' | 'registry';
const BUILD_ENGINES: readonly BuildEngine[] = ['docker', 'registry'];

/** `value` as an engine name, or E_ENGINE_OPTION naming where it came from (`--engine`, `builder-engine`). */
export function parseEngine(value: string, where: string): BuildEngine {
  if ((BUILD_ENGINES as readonly string[]).includes(value)) return value as BuildEngine;
  throw new EngineError('E_ENGINE_OPTION', 'user', `${where}: engine ${JSON.stringify(value)} is not one of ${BUILD_ENGINES.join(', ')}`, { details: { field: where, value } });
}
