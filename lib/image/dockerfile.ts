// The Dockerfile of a function image, for the classic builder (no BuildKit-only syntax).
//
//   deps stage     FROM the installation image: only the deps file is copied, then the install
//                  command runs, so a change to the code alone reuses this stage from the cache;
//   compile stage  (optional) FROM the compilation image: deps + code, then the compile command;
//   final stage    FROM the runtime image by digest: the runtime env, /kubeless (owner 1000), labels.
//
// The steps that run a command get a fresh /kubeless that any user may write, as Kubeless's emptyDir
// was: the image's own /kubeless may belong to root while its USER is not. Copying a context
// directory onto "/" sets the owner and mode of an existing /kubeless too, where COPY into it would
// not. A step's env (the function's env among it, e.g. a registry token) is a script in the build
// context that the step runs, not part of the RUN instruction: the instruction is the image history
// and the progress output, the script's layer stays in that stage and never reaches the image.
//
// No input can add an instruction: RUN and COPY use the JSON (exec) form, whose strings JSON
// escapes completely and which the builder does not expand; ENV and LABEL values are written in
// double quotes with "\", '"' and "$" escaped, and line breaks (which no Dockerfile quoting can
// hold) are refused; image references and paths are checked against strict patterns first.
import { BuilderError } from '../errors.ts';
import { FUNCTION_UID, INSTALL_VOLUME, type BuildPlan } from './plan.ts';
import { stepArgv, stepEnvScript, stepEnvScriptPath, type StepPhase } from './step-env.ts';

export const CONTEXT_FUNCTION_DIR = 'function';
export const CONTEXT_DEPS_DIR = 'deps';
/** Context dirs holding only `kubeless/`: copied onto "/" they give /kubeless its owner and mode. */
export const CONTEXT_STEP_VOLUME_DIR = 'volume/step';
export const CONTEXT_FINAL_VOLUME_DIR = 'volume/final';
/** Mode of /kubeless while a step runs (any USER writes there) and in the function image. */
export const STEP_VOLUME_MODE = 0o777;
export const FINAL_VOLUME_MODE = 0o755;
const CONTEXT_STEP_ENV_DIR = 'step-env';
/** Where a step's env script lies in its stage; outside /kubeless, so no COPY --from takes it along. */
const STEP_ENV_DIR = '/.function-image-builder';

const PINNED_IMAGE = /^[a-z0-9.:[\]-]+(\/[a-z0-9._-]+)+@sha256:[0-9a-f]{64}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._\/-]*$/;
const SAFE_FILE = /^[A-Za-z0-9_][A-Za-z0-9._+-]*$/;

export class DockerfileError extends BuilderError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('E_DOCKERFILE_VALUE', 'user', message, { details });
  }
}

/** A double-quoted Dockerfile word (ENV, LABEL) that holds `value` literally. */
export function quoteDockerfileValue(value: string, what: string): string {
  if (/[\r\n\0]/.test(value)) throw new DockerfileError(`${what} holds a line break or NUL, which a Dockerfile cannot carry`, { what });
  return `"${value.replace(/[\\"$]/g, (ch) => `\\${ch}`)}"`;
}

/** An exec-form argument list: JSON, with no raw line break possible. */
function execForm(args: string[]): string {
  return JSON.stringify(args);
}

function fromImage(image: string, stage?: string): string {
  if (!PINNED_IMAGE.test(image)) throw new DockerfileError(`base image ${JSON.stringify(image)} is not a digest reference`, { image });
  return `FROM ${image}${stage === undefined ? '' : ` AS ${stage}`}`;
}

/** A build-context file: the path in the context and its text. */
export interface StepEnvScript {
  path: string;
  content: string;
}

/** The scripts the plan's steps run, for the build context. */
export function stepEnvScripts(plan: BuildPlan): StepEnvScript[] {
  const scripts: StepEnvScript[] = [];
  for (const phase of ['installation', 'compilation'] as const) {
    const planned = plan.phases[phase];
    if (planned !== undefined) scripts.push({ path: stepEnvScriptPath(phase, CONTEXT_STEP_ENV_DIR), content: stepEnvScript(phase, planned.env) });
  }
  return scripts;
}

/** A writable /kubeless and the step's env script: the first instructions of a stage that runs a command. */
function stepSetup(step: StepPhase): string[] {
  return [
    `COPY --chown=${FUNCTION_UID}:${FUNCTION_UID} ${execForm([`${CONTEXT_STEP_VOLUME_DIR}/`, '/'])}`,
    `COPY ${execForm([stepEnvScriptPath(step, CONTEXT_STEP_ENV_DIR), stepEnvScriptPath(step, STEP_ENV_DIR)])}`,
  ];
}

/** The instruction (and so the history) names the command, never a value of the env. */
function runStep(step: StepPhase, command: string): string {
  return `RUN ${execForm(stepArgv(stepEnvScriptPath(step, STEP_ENV_DIR), command))}`;
}

function envInstruction(env: Record<string, string>): string {
  const pairs = Object.entries(env).map(([name, value]) => {
    if (!ENV_NAME.test(name)) throw new DockerfileError(`ENV name ${JSON.stringify(name)} is not a plain variable name`, { name });
    return `${name}=${quoteDockerfileValue(value, `ENV ${name}`)}`;
  });
  return `ENV ${pairs.join(' \\\n    ')}`;
}

function labelInstruction(labels: Record<string, string>): string {
  const pairs = Object.entries(labels)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => {
      if (!LABEL_KEY.test(key)) throw new DockerfileError(`label key ${JSON.stringify(key)} must be letters, digits, ".", "_", "/" and "-"`, { key });
      return `${quoteDockerfileValue(key, 'a label key')}=${quoteDockerfileValue(value, `label ${key}`)}`;
    });
  return `LABEL ${pairs.join(' \\\n      ')}`;
}

export interface DockerfileOptions {
  tag: string;
}

/** Every label of the function image, the caller's extra ones and the builder's own: the same for both engines. */
export function imageLabels(plan: BuildPlan, tag: string): Record<string, string> {
  const spec = plan.function;
  const own: Record<string, string> = {
    'org.opencontainers.image.title': spec.name,
    'org.opencontainers.image.version': tag,
    'org.opencontainers.image.base.name': plan.phases.runtime.image,
    'io.kubeless.function': spec.name,
    'io.kubeless.function.runtime': spec.runtime,
    'io.kubeless.function.handler': `${spec.handler.module}.${spec.handler.function}`,
    'io.kubeless.function.tag': tag,
  };
  // An extra label under one of these keys would be hashed into the tag and then overwritten.
  for (const key of Object.keys(plan.labels)) {
    if (key in own) throw new DockerfileError(`label ${JSON.stringify(key)} is set by the builder itself; choose another key for the extra label`, { key });
  }
  return { ...plan.labels, ...own };
}

export function renderDockerfile(plan: BuildPlan, options: DockerfileOptions): string {
  const { installation, compilation, runtime } = plan.phases;
  const depName = plan.runtime.depName;
  const chown = `--chown=${FUNCTION_UID}:${FUNCTION_UID}`;
  const lines: string[] = ['# Generated by function-image-builder.'];
  if (installation !== undefined) {
    if (!SAFE_FILE.test(depName)) throw new DockerfileError(`deps file name ${JSON.stringify(depName)} is not a plain file name`);
    lines.push(
      '',
      fromImage(installation.image, 'deps'),
      ...stepSetup('installation'),
      `COPY ${chown} ${execForm([`${CONTEXT_DEPS_DIR}/${depName}`, `${INSTALL_VOLUME}/${depName}`])}`,
      `WORKDIR ${INSTALL_VOLUME}`,
      runStep('installation', installation.command as string),
    );
  }
  const copyDeps = installation === undefined ? [] : [`COPY --from=deps ${chown} ${execForm([INSTALL_VOLUME, INSTALL_VOLUME])}`];
  const copyCode = `COPY ${chown} ${execForm([`${CONTEXT_FUNCTION_DIR}/`, `${INSTALL_VOLUME}/`])}`;
  if (compilation !== undefined) {
    lines.push(
      '',
      fromImage(compilation.image, 'compile'),
      ...stepSetup('compilation'),
      ...copyDeps,
      copyCode,
      `WORKDIR ${INSTALL_VOLUME}`,
      runStep('compilation', compilation.command as string),
    );
  }
  // The env is the same for every version of the function's code: set before the COPY steps it
  // stays cached, and a code-only change commits just the code layer and the tag label.
  lines.push('', fromImage(runtime.image), envInstruction(runtime.env), `COPY ${chown} ${execForm([`${CONTEXT_FINAL_VOLUME_DIR}/`, '/'])}`);
  if (compilation !== undefined) {
    lines.push(`COPY --from=compile ${chown} ${execForm([INSTALL_VOLUME, INSTALL_VOLUME])}`);
  } else {
    lines.push(...copyDeps, copyCode);
  }
  lines.push(labelInstruction(imageLabels(plan, options.tag)), '');
  return lines.join('\n');
}
