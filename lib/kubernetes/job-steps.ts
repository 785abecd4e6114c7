// The install and compile steps of the daemonless build Job, as Kubeless ran them: each in an init
// container of its own phase image, with `sh -c <command>` in /kubeless.
//
// A step's env holds the function's env, which may carry secrets (a registry token): it is never
// written into the Job's spec. The builder's `job-sources` init container, which reads the Function
// from the Job's input, writes it as a script into an in-memory emptyDir; the step container runs
// `sh <script> sh -c <command>`, and the script execs the command under `env -- NAME=value ...`.
import { BuilderError } from '../errors.ts';
import type { BuildPlan } from '../image/plan.ts';
import { JOB_STEPS_DIR } from './contract.ts';

export type StepPhase = 'installation' | 'compilation';

export interface JobStep {
  /** The phase image, pinned by digest. */
  image: string;
  /** The catalog's command, run with `sh -c`. */
  command: string;
}

/** The steps a Function's image needs run; none when it has no deps to install and nothing to compile. */
export interface JobSteps {
  installation?: JobStep | undefined;
  compilation?: JobStep | undefined;
}

export function jobSteps(plan: BuildPlan): JobSteps {
  const steps: JobSteps = {};
  for (const phase of ['installation', 'compilation'] as const) {
    const planned = plan.phases[phase];
    if (planned?.command !== undefined) steps[phase] = { image: planned.image, command: planned.command };
  }
  return steps;
}

export function hasSteps(steps: JobSteps): boolean {
  return steps.installation !== undefined || steps.compilation !== undefined;
}

/** Where a step's env script lies, for the `job-sources` container that writes it and the step that runs it. */
export function stepScriptPath(phase: StepPhase, dir: string = JOB_STEPS_DIR): string {
  return `${dir}/${phase}.sh`;
}

/** The step container's command: the env script, then the catalog command under `sh -c`. */
export function stepCommand(phase: StepPhase, step: JobStep): string[] {
  return ['sh', stepScriptPath(phase), 'sh', '-c', step.command];
}

/** `'text'` for sh: single quotes hold everything literally except a single quote itself. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * A POSIX sh script that runs its arguments with `env` added to the container's own, in order (later
 * names win, as in the Dockerfile engine's RUN step). Values are quoted, never expanded.
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
  return ['# Written by function-image-builder job-sources: the env of the build step, then the step itself.', `exec env -- ${assignments.join(' \\\n  ')} "$@"`, ''].join('\n');
}
