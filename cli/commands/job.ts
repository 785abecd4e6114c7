// function-image-builder job: the entrypoint of the build Job's container. Builds the mounted
// Function (or finds its image), logs JSON lines on stdout, and leaves the outcome in the
// termination message, where the scheduler reads it from the pod's status.
import { buildFunctionImage } from '../../lib/build.ts';
import { EXIT_OK } from '../../lib/errors.ts';
import { parseFunction } from '../../lib/function/parse.ts';
import { functionId } from '../../lib/function/spec.ts';
import type { JobResult } from '../../lib/kubernetes/termination-message.ts';
import { UsageError, type Command, type CommandIO } from '../command.ts';
import { readJobInputs, targetOf } from '../mounted-inputs.ts';
import { createJsonLog, libraryLog, progressLog } from '../json-log.ts';
import { reportJobFailure, writeTermination } from '../job-termination.ts';
import { planInputs } from '../../lib/kubernetes/plan-options.ts';

const usage = `usage: function-image-builder job

The build Job's entrypoint. Takes no arguments: everything comes from the environment and the files
the Job mounts (docs/kubernetes.md, "The Job's contract"):
  BUILDER_FUNCTION / BUILDER_FUNCTION_FILE   the Function (default /etc/function-image-builder/build/function.json)
  BUILDER_CONFIG_DIR                         the build input Secret (default /etc/function-image-builder/build):
                                             function-registry, function-registry-tls-verify,
                                             runtime-images, registry-settings,
                                             function-url-allow-private-addresses,
                                             tag (the tag the scheduler waits for: any other fails)
  BUILDER_SECRET_DIR                         the registry Secret (default /etc/function-image-builder/registry-secret):
                                             .dockerconfigjson or .dockercfg
  BUILDER_REGISTRY, BUILDER_REGISTRY_TLS_VERIFY, BUILDER_RUNTIME_IMAGES, BUILDER_REGISTRY_SETTINGS,
  BUILDER_ALLOW_PRIVATE_ADDRESSES, BUILDER_TAG
                                             override the files of the same meaning
  BUILDER_TERMINATION_LOG                    where the result goes (default /dev/termination-log)
  DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_TLS, DOCKER_CERT_PATH
                                             the Docker Engine (default the mounted /var/run/docker.sock)
  BUILDER_ENGINE                             docker (default) or registry (no Docker Engine)
  BUILDER_INSTALLED_DIR                      engine registry: the directory the Job's install/compile
                                             init containers ran in (/kubeless); it is appended as is

Logs one JSON object per line on stdout. Writes {"image","digest","reference","cached"} to the
termination log, or {"error":{"code","kind","message"}} on failure.
Exit codes: 0 built or found, 2 user error (retrying cannot help), 3 infrastructure failure.`;

async function run(args: string[], io: CommandIO): Promise<number> {
  if (args.length > 0) throw new UsageError(`job takes no arguments (got ${args.join(' ')}); it reads the mounted files and the environment`);
  const log = createJsonLog(io.stdout);
  try {
    const inputs = readJobInputs(io.env);
    log('info', 'inputs', {
      sources: inputs.sources,
      registry: inputs.registry ?? null,
      tlsVerify: inputs.tlsVerify,
      // Which registries the secret has credentials for: keys only.
      credentialKeys: inputs.dockerConfig?.entries.map((entry) => entry.key) ?? [],
    });
    for (const warning of inputs.dockerConfig?.warnings ?? []) log('warn', 'docker-config-warning', { message: warning });

    const spec = parseFunction(inputs.function);
    const { target, registries } = targetOf(inputs, spec.name);
    log('info', 'function', { function: functionId(spec), runtime: spec.runtime, target: target.repository, targetReason: target.reason });

    const result = await buildFunctionImage(spec, {
      registry: inputs.registry,
      // The same catalog and url allowance as job-sources and the scheduler that computed BUILDER_TAG.
      ...planInputs(inputs),
      dockerConfig: inputs.dockerConfig,
      registries,
      ...(inputs.engine !== undefined ? { engine: inputs.engine } : {}),
      ...(inputs.installedDir !== undefined ? { installedDir: inputs.installedDir } : {}),
      push: true,
      ...(inputs.tag !== undefined ? { expectedTag: inputs.tag } : {}),
      docker: io.env,
      signal: io.signal,
      log: libraryLog(log),
      onProgress: progressLog(log),
    });
    const outcome: JobResult = { image: result.image, digest: result.digest, reference: result.reference, cached: result.cached };
    writeTermination(inputs.terminationLog, outcome, log);
    log('info', 'result', { ...outcome, timings: result.timings });
    return EXIT_OK;
  } catch (error) {
    return reportJobFailure(error, io, log);
  }
}

export const command: Command = { summary: 'in-cluster entrypoint: build the mounted Function, report to the termination log', usage, run };
