// function-image-builder job-sources <deps|code>...: the builder's init containers in the daemonless
// build Job (engine registry). From the same mounted inputs as `job`, it writes into /kubeless what
// the next step needs — `deps`: the deps file the installation step installs; `code`: the function's
// files the compilation step compiles — and each step's env as a script in the in-memory steps
// directory, so that the function's env values never appear in the Job's spec.
import { writeFileSync } from 'node:fs';
import { EXIT_OK } from '../../lib/errors.ts';
import { parseFunction } from '../../lib/function/parse.ts';
import { functionId } from '../../lib/function/spec.ts';
import { expectedPlanIdentity } from '../../lib/image/identity.ts';
import { resolveBuildPlan } from '../../lib/image/plan.ts';
import { volumeFiles, writeVolumeFiles, type VolumeFiles } from '../../lib/image/volume-files.ts';
import { JOB_ENV, JOB_INSTALL_DIR, JOB_STEPS_DIR } from '../../lib/kubernetes/contract.ts';
import { stepEnvScript, stepScriptPath, type StepPhase } from '../../lib/kubernetes/job-steps.ts';
import { planOptions } from '../../lib/kubernetes/plan-options.ts';
import { UsageError, type Command, type CommandIO } from '../command.ts';
import { readJobInputs, targetOf } from '../mounted-inputs.ts';
import { createJsonLog } from '../json-log.ts';
import { reportJobFailure } from '../job-termination.ts';

const PARTS = ['deps', 'code'] as const;
type Part = (typeof PARTS)[number];

const usage = `usage: function-image-builder job-sources <deps|code>...

An init container of the daemonless build Job (kubeless-config builder-engine: registry). Reads the
Function and the settings as "function-image-builder job" does, then writes into the install
directory (BUILDER_INSTALLED_DIR, default ${JOB_INSTALL_DIR}):
  deps   the dependency file, for the installation step
  code   the function's files, for the compilation step
and each build step's env as a script in BUILDER_STEPS_DIR (default ${JOB_STEPS_DIR}), which the step's
container runs its command through. Files are owned by user 1000 when run as root.
Exit codes: 0 written, 2 user error (bad Function, checksum, archive), 3 infrastructure failure.`;

async function run(args: string[], io: CommandIO): Promise<number> {
  const parts = [...new Set(args)];
  const unknown = parts.filter((part) => !(PARTS as readonly string[]).includes(part));
  if (parts.length === 0 || unknown.length > 0) {
    throw new UsageError(`job-sources takes what to write: ${PARTS.join(' and/or ')}${unknown.length > 0 ? ` (not ${unknown.join(', ')})` : ''}`);
  }
  const log = createJsonLog(io.stdout);
  try {
    const inputs = readJobInputs(io.env);
    log('info', 'inputs', { sources: inputs.sources, credentialKeys: inputs.dockerConfig?.entries.map((entry) => entry.key) ?? [] });
    const spec = parseFunction(inputs.function);
    const { registries } = targetOf(inputs, spec.name);
    const plan = await resolveBuildPlan(spec, planOptions({ ...inputs, registries, registrySecret: { dockerConfig: inputs.dockerConfig } }, io.signal));
    // The Job's init containers were made from the scheduler's plan: inputs that give another tag
    // (a runtime image tag moved since) would install for an image nobody waits for.
    expectedPlanIdentity(plan, inputs.tag);
    const files: VolumeFiles = volumeFiles(plan, await plan.materialise(io.signal));
    const dir = inputs.installedDir ?? JOB_INSTALL_DIR;
    const written = (parts as Part[]).flatMap((part) => files[part]);
    writeVolumeFiles(dir, written);

    const stepsDir = io.env[JOB_ENV.stepsDir] || JOB_STEPS_DIR;
    const steps: Record<string, string[]> = {};
    for (const phase of ['installation', 'compilation'] as StepPhase[]) {
      const planned = plan.phases[phase];
      if (planned === undefined) continue;
      // Readable by the step's own user; the directory is the pod's in-memory emptyDir.
      writeFileSync(stepScriptPath(phase, stepsDir), stepEnvScript(phase, planned.env), { mode: 0o644 });
      steps[phase] = Object.keys(planned.env); // names only: the values may be secrets
    }
    log('info', 'sources-written', { function: functionId(spec), parts, dir, files: written.map((file) => file.path), steps });
    return EXIT_OK;
  } catch (error) {
    return reportJobFailure(error, io, log);
  }
}

export const command: Command = { summary: 'daemonless Job init container: write the deps file or code into /kubeless', usage, run };
