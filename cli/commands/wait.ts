// function-image-builder wait <image>: polls the registry until the image exists. Meant as the init
// container of a function's pod, so the pod waits for its image instead of sitting in ImagePullBackOff.
import { sleep } from '../../lib/sleep.ts';
import { BuilderError, EXIT_OK } from '../../lib/errors.ts';
import { parseReference } from '../../lib/image/reference.ts';
import { RegistryClient } from '../../lib/registry/client.ts';
import { transportFor } from '../../lib/registry/transport.ts';
import { UsageError, type Command, type CommandIO } from '../command.ts';
import { readDockerConfigFlag, parseCommandLine } from '../flags.ts';
import { readRegistryInputs } from '../mounted-inputs.ts';
import { createJsonLog, libraryLog } from '../json-log.ts';

const usage = `usage: function-image-builder wait <image> [options]

Waits until <image> (host/repository:tag or host/repository@sha256:...) exists in its registry,
then exits 0. Polls with backoff; gives up at the deadline with exit code 3.

options:
  --timeout SECONDS        deadline (default 600)
  --interval SECONDS       first delay between checks, growing 1.5x up to --max-interval (default 1)
  --max-interval SECONDS   longest delay between checks (default 15)
  --tls-verify=false       do not verify the registry's TLS certificate
  --insecure               talk plain HTTP to the registry
  --docker-config FILE     credentials (.dockerconfigjson or .dockercfg); default: the mounted
                           registry Secret (BUILDER_SECRET_DIR, /etc/function-image-builder/registry-secret)

Settings also come from BUILDER_REGISTRY_TLS_VERIFY and BUILDER_REGISTRY_SETTINGS or the files of the
build input Secret, as for the job command. Logs one JSON object per line on stdout.`;

/** The image did not appear before the deadline: the build may still be running, so it is worth a retry. */
export class WaitTimeoutError extends BuilderError {
  constructor(message: string, details: Record<string, unknown>) {
    super('E_WAIT_TIMEOUT', 'infrastructure', message, { details });
  }
}

/** Registry failures that waiting cannot fix. */
const PERMANENT = new Set(['E_REGISTRY_TLS', 'E_REFERENCE_INVALID', 'E_CREDENTIALS_INVALID']);

function seconds(value: string | undefined, option: string, fallback: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) throw new UsageError(`--${option} takes a positive number of seconds, not "${value}"`);
  return number;
}

async function run(args: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseCommandLine(args, {
    timeout: { type: 'string' },
    interval: { type: 'string' },
    'max-interval': { type: 'string' },
    'tls-verify': { type: 'string' },
    insecure: { type: 'boolean' },
    'docker-config': { type: 'string' },
  });
  if (positionals.length !== 1) throw new UsageError('wait takes exactly one image reference');
  const timeoutMs = seconds(values.timeout, 'timeout', 600) * 1000;
  const firstDelayMs = seconds(values.interval, 'interval', 1) * 1000;
  const maxDelayMs = Math.max(firstDelayMs, seconds(values['max-interval'], 'max-interval', 15) * 1000);
  const tlsFlag = values['tls-verify'];
  if (tlsFlag !== undefined && tlsFlag !== 'true' && tlsFlag !== 'false') throw new UsageError(`--tls-verify takes true or false, not "${tlsFlag}"`);

  const log = createJsonLog(io.stdout);
  const image = parseReference(positionals[0]!);
  const inputs = readRegistryInputs(io.env);
  const { config: dockerConfig, source: credentialsSource } = values['docker-config'] !== undefined
    ? readDockerConfigFlag(io, values['docker-config'])
    : { config: inputs.dockerConfig, source: inputs.dockerConfigSource };
  const tlsVerify = tlsFlag !== undefined ? tlsFlag === 'true' : inputs.tlsVerify;
  const transport = { ...transportFor(inputs.registries, image.registry) };
  if (!tlsVerify) transport.tlsVerify = false;
  if (values.insecure) transport.insecure = true;

  const client = new RegistryClient({
    registry: image.registry,
    credentials: dockerConfig,
    transport,
    // Each check is cheap and the loop retries anyway: fail a check fast rather than hang in it.
    timeoutMs: Math.min(30_000, timeoutMs),
    retries: 1,
    log: libraryLog(log),
  });
  const started = Date.now();
  const deadline = started + timeoutMs;
  log('info', 'waiting', { image: image.toString(), timeoutSeconds: timeoutMs / 1000, credentials: credentialsSource ?? null, credentialKey: client.credentialKey, tlsVerify });
  let delay = firstDelayMs;
  let attempts = 0;
  let lastProblem = 'the image does not exist yet';
  for (;;) {
    attempts += 1;
    try {
      const found = await client.manifestExists(image.repository, image.tagOrDigest);
      if (found) {
        log('info', 'image-found', { image: image.toString(), digest: found.digest, attempts, waitedMs: Date.now() - started });
        return EXIT_OK;
      }
      lastProblem = 'the image does not exist yet';
      log('debug', 'image-missing', { attempt: attempts });
    } catch (error) {
      if (io.signal.aborted) throw error;
      // Registries answer "denied" for a repository nobody pushed yet, so most failures are retried.
      if (!(error instanceof BuilderError) || PERMANENT.has(error.code)) throw error;
      lastProblem = `${error.code}: ${error.message}`;
      log('warn', 'check-failed', { attempt: attempts, code: error.code, message: error.message });
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      throw new WaitTimeoutError(
        `${image.toString()} did not appear within ${Math.round(timeoutMs / 1000)} s (${attempts} checks; last: ${lastProblem}); is its build Job still running? "kubectl get jobs -l function=<name>"`,
        { image: image.toString(), attempts, timeoutSeconds: timeoutMs / 1000 },
      );
    }
    await sleep(Math.min(delay, remaining), io.signal);
    delay = Math.min(delay * 1.5, maxDelayMs);
  }
}

export const command: Command = { summary: 'wait until an image exists in its registry (init container)', usage, run };
