// function-image-builder job-manifest <file>: the input Secret and Job that build a Function in a
// cluster, as YAML for `kubectl apply -f -` — what scheduleBuild() creates, for people and scripts.
import { parse as parseYaml, stringify } from 'yaml';
import { BuilderError, EXIT_OK } from '../../lib/errors.ts';
import { functionObjects, parseFunction } from '../../lib/function/parse.ts';
import { planIdentity } from '../../lib/image/identity.ts';
import { resolveBuildPlan } from '../../lib/image/plan.ts';
import { parseEngine } from '../../lib/engine/errors.ts';
import { DEFAULT_JOB_SETTINGS, parseBuilderConfig, REGISTRY_SECRET_NAME, type BuilderConfig } from '../../lib/kubernetes/config.ts';
import { jobSteps } from '../../lib/kubernetes/job-steps.ts';
import { buildJobManifest } from '../../lib/kubernetes/manifest.ts';
import { planOptions } from '../../lib/kubernetes/plan-options.ts';
import { resolveTarget, TargetError } from '../../lib/target.ts';
import { UsageError, type Command, type CommandIO } from '../command.ts';
import { InputFileError, readDockerConfigFlag, parseCommandLine, readFunctionInput, readText } from '../flags.ts';

const usage = `usage: function-image-builder job-manifest <file|-> [options]

Prints, for each Kubeless Function in <file> (YAML or JSON; "-" reads stdin), the Secret holding the
build input (the Function, whose env may hold passwords, and the settings) and the batch/v1 Job that
build its image in the cluster, ready for "kubectl apply -f -". The Job is named
build-<function>-<tag[0:10]>; the tag is computed here (runtime images given by tag are resolved at
their registry).

options:
  --kubeless-config FILE    take the settings from a kubeless-config ConfigMap (YAML or JSON, e.g.
                            kubectl get configmap -n kubeless kubeless-config -o yaml): runtime-images,
                            function-registry-tls-verify, builder-image, builder-image-secret,
                            function-registry, registry-settings, builder-engine,
                            function-url-allow-private-addresses; the options below override it
  --builder-image IMAGE     the Job's image (built from Dockerfile.builder); required without
                            --kubeless-config
  --builder-image-secret NAME   pull secret of the builder image
  --registry HOST[/NS]      push to HOST/NS/<function>:<tag> (default: the registry Secret's only entry)
  --runtimes FILE           runtime-images JSON (default: kubeless-config's, else the upstream runtimes)
  --tls-verify=false        do not verify the target registry's certificate
  --allow-private-addresses the Job (and the tag computed here) may fetch url sources from loopback,
                            link-local and private addresses
  --secret NAME             registry Secret the Job mounts (default ${REGISTRY_SECRET_NAME})
  --namespace NS            namespace of the Job, its input and the registry Secret (default: the function's)
  --docker-config FILE      credentials for resolving runtime image tags here (default: docker's config)
  --docker-socket PATH      the Docker Engine socket on the nodes (default ${DEFAULT_JOB_SETTINGS.dockerSocket})
  --engine docker|registry  docker (default): the Job builds with the node's Docker Engine; registry: no
                            Docker socket, init containers install the deps and the Job appends the layers
  --backoff-limit N         retries of infrastructure failures (default ${DEFAULT_JOB_SETTINGS.backoffLimit})
  --deadline SECONDS        activeDeadlineSeconds (default ${DEFAULT_JOB_SETTINGS.activeDeadlineSeconds})
  --ttl SECONDS             ttlSecondsAfterFinished (default ${DEFAULT_JOB_SETTINGS.ttlSecondsAfterFinished})

The input Secret is not owned by the Job here (its uid is not known before it exists); delete both with
  kubectl delete job,secret -l created-by=kubeless,function=<name>`;

function readSettingsFile(io: CommandIO, path: string): Record<string, string> {
  const text = readText(io, path, 'the kubeless-config file');
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw new InputFileError(path, 'the kubeless-config file (neither YAML nor JSON)', error);
  }
  const data = (document as { kind?: unknown; data?: unknown } | null)?.kind === 'ConfigMap' ? (document as { data?: unknown }).data : document;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new BuilderError('E_CONFIG_INVALID', 'user', `${path}: expected a ConfigMap (or its data map) with kubeless-config keys`, { details: { path } });
  }
  return Object.fromEntries(Object.entries(data as Record<string, unknown>).map(([key, value]) => [key, String(value)]));
}

function integer(value: string | undefined, option: string, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!Number.isInteger(number) || number < min) throw new UsageError(`--${option} takes a whole number ≥ ${min}, not "${value}"`);
  return number;
}

async function run(args: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseCommandLine(args, {
    'kubeless-config': { type: 'string' },
    'builder-image': { type: 'string' },
    'builder-image-secret': { type: 'string' },
    registry: { type: 'string' },
    runtimes: { type: 'string' },
    'tls-verify': { type: 'string' },
    'allow-private-addresses': { type: 'boolean' },
    secret: { type: 'string' },
    namespace: { type: 'string' },
    'docker-config': { type: 'string' },
    'docker-socket': { type: 'string' },
    engine: { type: 'string' },
    'backoff-limit': { type: 'string' },
    deadline: { type: 'string' },
    ttl: { type: 'string' },
  });
  if (positionals.length !== 1) throw new UsageError('job-manifest needs one Function file (or "-" for stdin)');
  const settings = values['kubeless-config'] !== undefined ? readSettingsFile(io, values['kubeless-config']) : {};
  const pick = (key: string): string | undefined => (settings[key] !== undefined && settings[key]!.trim() !== '' ? settings[key] : undefined);

  const builderImage = values['builder-image'] ?? pick('builder-image');
  if (builderImage === undefined) throw new UsageError('job-manifest needs --builder-image (or a --kubeless-config with builder-image)');
  const tlsFlag = values['tls-verify'];
  if (tlsFlag !== undefined && tlsFlag !== 'true' && tlsFlag !== 'false') throw new UsageError(`the TLS setting must be true or false, not "${tlsFlag}"`);
  const { config: dockerConfig } = readDockerConfigFlag(io, values['docker-config']);
  // The flags win over the file; everything else is parsed where readBuilderConfig parses it.
  const settingsConfig = parseBuilderConfig(settings, {
    where: values['kubeless-config'] ?? 'kubeless-config',
    // The credentials given here stand in for the Secret's in the runtime images' lookups.
    registrySecret: { name: values.secret ?? REGISTRY_SECRET_NAME, namespace: '', dockerConfig },
    overrides: {
      registry: values.registry,
      builderImage,
      builderImageSecret: values['builder-image-secret'],
      ...(tlsFlag !== undefined ? { tlsVerify: tlsFlag === 'true' } : {}),
      ...(values.engine !== undefined ? { engine: parseEngine(values.engine, '--engine') } : {}),
      ...(values['allow-private-addresses'] === true ? { allowPrivateAddresses: true } : {}),
      ...(values.runtimes !== undefined ? { runtimeImages: { text: readText(io, values.runtimes, 'the runtime catalog'), where: values.runtimes } } : {}),
      job: {
        dockerSocket: values['docker-socket'] ?? DEFAULT_JOB_SETTINGS.dockerSocket,
        backoffLimit: integer(values['backoff-limit'], 'backoff-limit', DEFAULT_JOB_SETTINGS.backoffLimit, 0),
        activeDeadlineSeconds: integer(values.deadline, 'deadline', DEFAULT_JOB_SETTINGS.activeDeadlineSeconds, 1),
        ttlSecondsAfterFinished: integer(values.ttl, 'ttl', DEFAULT_JOB_SETTINGS.ttlSecondsAfterFinished, 0),
      },
    },
  });

  const documents: string[] = [];
  for (const { value } of functionObjects(await readFunctionInput(io, positionals[0]!))) {
    // Validated here; the object itself goes into the input Secret, as the cluster would hold it.
    const object = value as object;
    const fn = parseFunction(object);
    const config: BuilderConfig = { ...settingsConfig, registrySecret: { ...settingsConfig.registrySecret, namespace: values.namespace ?? fn.namespace } };
    // The target may only be known in the cluster (from the Secret there); then the Job finds it.
    let target;
    try {
      target = resolveTarget({ registry: config.registry, dockerConfig, functionName: fn.name });
    } catch (error) {
      if (!(error instanceof TargetError) || config.registry !== undefined) throw error;
    }
    const plan = await resolveBuildPlan(fn, planOptions(config, io.signal));
    const tag = planIdentity(plan);
    const { input, job } = buildJobManifest(
      { name: fn.name, namespace: fn.namespace, uid: fn.uid, source: object, tag, image: target ? `${target.repository}:${tag}` : undefined, steps: jobSteps(plan) },
      config,
    );
    documents.push(stringify(input, { aliasDuplicateObjects: false }), stringify(job, { aliasDuplicateObjects: false }));
  }
  io.stdout.write(documents.map((doc) => `---\n${doc}`).join(''));
  return EXIT_OK;
}

export const command: Command = { summary: 'print the input Secret and Job YAML that build a Function in a cluster', usage, run };
