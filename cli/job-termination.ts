// The termination message of the build Job's containers (`job`, `job-sources`): where the
// scheduler reads each one's outcome from the pod's status, and how a failure is reported there.
import { writeFileSync } from 'node:fs';
import { BuilderError, exitCodeFor } from '../lib/errors.ts';
import { encodeTerminationMessage, type JobFailure, type JobResult } from '../lib/kubernetes/termination-message.ts';
import type { CommandIO } from './command.ts';
import type { JsonLog } from './json-log.ts';
import { terminationLogPath } from './mounted-inputs.ts';

export function writeTermination(path: string, outcome: JobResult | JobFailure, log: JsonLog): void {
  try {
    writeFileSync(path, encodeTerminationMessage(outcome));
  } catch (error) {
    // The log still has the outcome; a missing termination file must not turn success into failure.
    log('warn', 'termination-log-unwritable', { path, message: (error as Error).message });
  }
}

/** A failed in-cluster command: the error to the termination message and the log; its exit code. */
export function reportJobFailure(error: unknown, io: CommandIO, log: JsonLog): number {
  const exitCode = exitCodeFor(error);
  const reported =
    error instanceof BuilderError
      ? { code: error.code, kind: error.kind, message: error.message }
      : { code: 'E_INTERNAL', kind: 'internal', message: error instanceof Error ? error.message : String(error) };
  writeTermination(terminationLogPath(io.env), { error: reported }, log);
  log('error', 'failed', { ...reported, exitCode, ...(error instanceof BuilderError ? { details: error.details } : {}) });
  return exitCode;
}
