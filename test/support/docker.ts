// The docker CLI, for tests that check what a user would check by hand (`docker run`, `docker pull`).
// The library itself talks to the Engine through dockerode; tests use the CLI as the independent witness.
import { spawn } from 'node:child_process';

/** Label put on every container and image the tests create, so cleanup checks can find strays. */
export const TEST_LABEL = 'io.function-image-builder.test';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; resolves with its output whatever the exit code. */
export function exec(
  command: string,
  args: string[],
  options: { input?: string | Buffer; env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined;
    child.on('error', reject);
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    // A child may stop reading its input early (a refused size): the broken pipe is its answer.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input);
  });
}

/** Runs the docker CLI and throws with its stderr when it fails. */
export async function docker(args: string[], options: Parameters<typeof exec>[2] = {}): Promise<string> {
  const result = await exec('docker', args, { timeoutMs: 600_000, ...options });
  if (result.code !== 0) {
    throw new Error(`docker ${args.join(' ')} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`);
  }
  return result.stdout;
}
