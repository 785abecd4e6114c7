// The env of an install or compile step, as a script that runs the step: the env holds the
// function's env, which may carry secrets (a registry token), so it is never written where a spec,
// an image history or a progress line would show it. The step runs `sh <script> sh -c <command>`,
// and the script execs its arguments under `env -- NAME=value ...`. Both engines' steps use it: the
// Dockerfile's RUN (the script comes with the build context) and the daemonless Job's init
// containers (written by `job-sources` into an in-memory emptyDir).
import { BuilderError } from '../errors.ts';

export type StepPhase = 'installation' | 'compilation';

/** Where the env script of `phase` lies in `dir`. */
export function stepEnvScriptPath(phase: StepPhase, dir: string): string {
  return `${dir}/${phase}.sh`;
}

/** `sh <script> sh -c <command>`: the argv names the command, never a value of the env. */
export function stepArgv(script: string, command: string): string[] {
  return ['sh', script, 'sh', '-c', command];
}

/** `'text'` for sh: single quotes hold everything literally except a single quote itself. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * A POSIX sh script that runs its arguments with `env` added to the container's own, in order (later
 * names win). Values are quoted, never expanded; `env` takes any name a Kubernetes env may have
 * (dots, dashes), as `export` would not.
 */
export function stepEnvScript(phase: StepPhase, env: Record<string, string>): string {
  const assignments = Object.entries(env).map(([name, value]) => {
    if (name === '' || name.includes('=') || name.startsWith('-') || /[\0\r\n]/.test(name) || value.includes('\0')) {
      throw new BuilderError('E_STEP_ENV_INVALID', 'user', `env ${JSON.stringify(name)} of the ${phase} step cannot be passed to a process: a name needs no "=", leading "-" or line break, a value no NUL`, {
        details: { phase, name },
      });
    }
    return shellQuote(`${name}=${value}`);
  });
  return [`# Written by function-image-builder: the env of the ${phase} step, then the step itself.`, `exec env -- ${assignments.join(' \\\n  ')} "$@"`, ''].join('\n');
}
