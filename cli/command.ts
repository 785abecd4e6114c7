// What a command is and what it is given: shared by the dispatcher (main.ts) and every command, in
// a file of its own so that neither imports the other.
import { BuilderError } from '../lib/errors.ts';

export interface CommandIO {
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  env: Record<string, string | undefined>;
  cwd: string;
  /** Cancels the running command (Ctrl-C, SIGTERM of the Job's pod). */
  signal: AbortSignal;
}

export interface Command {
  summary: string;
  usage: string;
  run(args: string[], io: CommandIO): Promise<number>;
}

/** A wrong command line: exit code 2, with the command's usage. */
export class UsageError extends BuilderError {
  constructor(message: string) {
    super('E_USAGE', 'user', message);
  }
}
