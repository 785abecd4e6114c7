// Typed failures of the registry engine's own decisions (the registry and daemon steps it uses have
// their own error classes).
import { BuilderError, type BuilderErrorOptions, type ErrorCode, type ErrorKind } from '../errors.ts';

/** The codes the engine raises itself; each is described in ErrorCode. */
export type EngineErrorCode = Extract<ErrorCode, 'E_INSTALL_REQUIRED' | 'E_INSTALL_NO_DOCKER' | 'E_ENGINE_OPTION'>;

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
