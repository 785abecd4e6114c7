// The install and compile steps of the daemonless build Job, as Kubeless ran them: each in an init
// container of its own phase image, with `sh -c <command>` in /kubeless.
//
// A step's env holds the function's env, which may carry secrets (a registry token): it is never
// written into the Job's spec. The builder's `job-sources` init container, which reads the Function
// from the Job's input, writes it as a script into an in-memory emptyDir; the step container runs
// `sh <script> sh -c <command>`, and the script execs the command under `env -- NAME=value ...`.
import type { BuildPlan } from '../image/plan.ts';
import { stepArgv, stepEnvScriptPath, type StepPhase } from '../image/step-env.ts';
import { JOB_STEPS_DIR } from './contract.ts';

export { stepEnvScript, type StepPhase } from '../image/step-env.ts';

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
  return stepEnvScriptPath(phase, dir);
}

/** The step container's command: the env script, then the catalog command under `sh -c`. */
export function stepCommand(phase: StepPhase, step: JobStep): string[] {
  return stepArgv(stepScriptPath(phase), step.command);
}
