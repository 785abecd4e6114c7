// The build Job for engine `registry`: no Docker socket anywhere in the pod. It runs as Kubeless's
// build did: init containers prepare /kubeless (an emptyDir) — the builder writes the deps file, the
// installation image installs it as its own user, the builder adds the code and the compilation
// image compiles — and the build container appends /kubeless and the code to the runtime image
// through the registry API and pushes the result.
//
// Made from the Job buildJobManifest makes (without the socket for this engine) by adding the rest, so
// that everything else (inputs, names, limits, ownership) stays one definition.
import type { V1Container, V1PodFailurePolicyRule, V1VolumeMount } from '@kubernetes/client-node';
import { EXIT_USER_ERROR } from '../errors.ts';
import type { BuilderConfig } from './config.ts';
import { BUILD_CONTAINER_NAME, JOB_ENV, JOB_INSTALL_DIR, JOB_STEPS_DIR, STEP_CONTAINER_NAMES } from './contract.ts';
import { hasSteps, stepCommand, type JobSteps, type StepPhase } from './job-steps.ts';
import type { JobManifests } from './manifest.ts';

const INSTALL_VOLUME = 'kubeless';
const STEPS_VOLUME = 'build-steps';
/** Exit codes of a process killed by SIGKILL (OOM, eviction) and SIGTERM: the node's doing, worth a retry. */
const KILLED_EXIT_CODES = [137, 143];

export function daemonlessJobManifests(manifests: JobManifests, steps: JobSteps, config: BuilderConfig): JobManifests {
  const { job } = manifests;
  const pod = job.spec!.template.spec!;
  const build = pod.containers.find((container) => container.name === BUILD_CONTAINER_NAME)!;

  // What `job` reads (the Function, the settings, the registry Secret): `job-sources` reads the same.
  const inputMounts = build.volumeMounts ?? [];
  build.env = [{ name: JOB_ENV.engine, value: 'registry' }];
  if (!hasSteps(steps)) return manifests;

  // Kubernetes makes an emptyDir writable for every user, so the step images keep their own users.
  pod.volumes!.push({ name: INSTALL_VOLUME, emptyDir: {} }, { name: STEPS_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '4Mi' } });
  const installMount: V1VolumeMount = { name: INSTALL_VOLUME, mountPath: JOB_INSTALL_DIR };
  const stepsMount: V1VolumeMount = { name: STEPS_VOLUME, mountPath: JOB_STEPS_DIR };
  build.volumeMounts = [...inputMounts, { ...installMount, readOnly: true }];
  build.env.push({ name: JOB_ENV.installedDir, value: JOB_INSTALL_DIR });

  const sources = (name: string, part: 'deps' | 'code'): V1Container => ({
    ...structuredClone(build),
    name,
    args: ['job-sources', part],
    volumeMounts: [...inputMounts, installMount, stepsMount],
    // Neither the engine nor the installed dir is job-sources's: it builds nothing and writes to JOB_INSTALL_DIR.
    env: [],
  });
  const step = (name: string, phase: StepPhase): V1Container => ({
    name,
    image: steps[phase]!.image,
    command: stepCommand(phase, steps[phase]!),
    workingDir: JOB_INSTALL_DIR,
    resources: structuredClone(build.resources),
    terminationMessagePath: build.terminationMessagePath,
    terminationMessagePolicy: 'FallbackToLogsOnError',
    volumeMounts: [installMount, { ...stepsMount, readOnly: true }],
  });
  const builderSteps: V1Container[] = [];
  const phaseSteps: V1Container[] = [];
  if (steps.installation) {
    builderSteps.push(sources(STEP_CONTAINER_NAMES.depsFile, 'deps'));
    phaseSteps.push(step(STEP_CONTAINER_NAMES.installation, 'installation'));
  }
  if (steps.compilation) {
    builderSteps.push(sources(STEP_CONTAINER_NAMES.code, 'code'));
    phaseSteps.push(step(STEP_CONTAINER_NAMES.compilation, 'compilation'));
  }
  // deps-file, install, code, compile: each builder step before the phase step that needs its files.
  pod.initContainers = builderSteps.flatMap((container, index) => [container, phaseSteps[index]!]);

  // The phase images come from the registries the Secret holds credentials for, as the base images do.
  const pullSecrets = new Set([...(pod.imagePullSecrets ?? []).map((secret) => secret.name), config.registrySecret.name]);
  pod.imagePullSecrets = [...pullSecrets].map((name) => ({ name }));

  // A failing install or compile command fails the same way on a retry (as the Docker engine's
  // failed RUN step is a user error), unless the node killed it; the builder's own init containers
  // exit 2 on a user error, as the build container does.
  const rules: V1PodFailurePolicyRule[] = [
    ...builderSteps.map((container): V1PodFailurePolicyRule => ({ action: 'FailJob', onExitCodes: { containerName: container.name, operator: 'In', values: [EXIT_USER_ERROR] } })),
    ...phaseSteps.map((container): V1PodFailurePolicyRule => ({ action: 'FailJob', onExitCodes: { containerName: container.name, operator: 'NotIn', values: [0, ...KILLED_EXIT_CODES] } })),
  ];
  const policy = job.spec!.podFailurePolicy;
  // After the rule that ignores disruptions: an evicted pod is retried whatever its steps exited with.
  if (policy) policy.rules = [...policy.rules, ...rules];
  return { input: manifests.input, job };
}
