// function-image-builder build <file|-> --registry HOST[/NS] ...: builds (or finds) the image of
// every Function in the file and prints where it is.
import { buildFunctionImage, type BuildResult } from '../../lib/build.ts';
import { resolve } from 'node:path';
import { parseEngine, type BuildEngine } from '../../lib/engine/errors.ts';
import { EXIT_OK } from '../../lib/errors.ts';
import { defaultCacheDir } from '../../lib/image/blob-cache.ts';
import { parseOutputSpec } from '../../lib/image/output-spec.ts';
import { parseFunctions } from '../../lib/function/parse.ts';
import { functionId } from '../../lib/function/spec.ts';
import { UsageError, type Command, type CommandIO } from '../command.ts';
import { createDisplay } from '../display.ts';
import { loadCatalog, readDockerConfigFlag, parseCommandLine, readFunctionInput, registryOptions, registrySettings } from '../flags.ts';

const usage = `usage: function-image-builder build <file|-> [options]

Builds the image of each Kubeless Function in <file> (YAML or JSON; "-" reads stdin), pushes it and
prints its immutable reference. An image that exists already is not rebuilt.

options:
  --registry HOST[/NS]      push to HOST/NS/<function>:<tag>; without NS the docker config's username
                            for HOST is the namespace (Kubeless's layout). Default: the docker config's
                            only entry
  --pull-registry HOST[/NS] the name nodes pull from when it differs from --registry (an in-cluster
                            registry pushed to at its Service name, pulled from localhost:5000): the
                            printed reference uses it, with the pushed digest
  --runtimes FILE           runtime catalog: Kubeless runtime-images JSON or a kubeless-config
                            ConfigMap (default: the upstream Kubeless runtimes)
  --docker-config FILE      registry credentials: .dockerconfigjson, .dockercfg or docker's config.json
                            (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json if present)
  --insecure-registry HOST  talk plain HTTP to HOST (repeatable)
  --tls-no-verify HOST      do not verify HOST's TLS certificate (repeatable)
  --ca HOST=FILE            trust the CA in FILE for HOST (repeatable)
  --allow-private-addresses fetch url sources (and their redirects) from loopback, link-local and
                            private addresses too, for local development (refused by default)
  --no-push                 build into the local Docker Engine only (minikube: eval $(minikube docker-env))
  --engine docker|registry  docker (default): docker build + push on the Docker Engine; registry: append
                            the function's layers to the runtime image through the registry API (the
                            Docker Engine only runs an install step, when no recorded deps layer exists)
  --installed-dir DIR       registry engine: DIR holds /kubeless after the install step; nothing is run
  --no-install              never run an install/compile step: fail with E_INSTALL_REQUIRED when one is
                            needed and no deps layer is recorded in the target repository
  --platforms P1,P2         registry engine, multi-platform runtime image, no deps: build only these
                            platforms (default: all the runtime image has)
  --output oci:DIR|docker-archive:FILE
                            write the image to an OCI image layout or a tarball for docker load instead
                            of pushing it (registry engine; nothing is pushed, the registry is only read)
  --cache-dir DIR           where --output keeps the runtime images' layers (default:
                            $FUNCTION_IMAGE_BUILDER_CACHE_DIR, $XDG_CACHE_HOME/function-image-builder or
                            ~/.cache/function-image-builder)
  --timeout SECONDS         limit for one function, from reading its source to the push (default 1800)
  --json                    print the result as JSON on stdout (an array when the file holds several)

The Docker Engine is found like the docker CLI finds it: DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH.
Exit codes: 0 built or found, 2 a problem with the input (spec, catalog, credentials denied, failing
install step), 3 an infrastructure failure (daemon or registry unreachable, timeout) worth a retry.`;

async function run(args: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseCommandLine(args, {
    ...registryOptions,
    'pull-registry': { type: 'string' },
    'no-push': { type: 'boolean' },
    timeout: { type: 'string' },
    engine: { type: 'string' },
    'installed-dir': { type: 'string' },
    'no-install': { type: 'boolean' },
    platforms: { type: 'string' },
    output: { type: 'string' },
    'cache-dir': { type: 'string' },
  });
  let engine: BuildEngine | undefined;
  try {
    engine = values.engine === undefined ? undefined : parseEngine(values.engine, '--engine');
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'build needs the Function file (or "-" for stdin)' : `build takes one Function file, not ${positionals.length}`);
  let timeoutMs: number | undefined;
  if (values.timeout !== undefined) {
    const seconds = Number(values.timeout);
    if (!Number.isFinite(seconds) || seconds <= 0) throw new UsageError(`--timeout takes a number of seconds, not "${values.timeout}"`);
    timeoutMs = seconds * 1000;
  }
  const output = values.output === undefined ? undefined : parseOutputSpec(values.output, io.cwd);
  if (values['cache-dir'] !== undefined && !output) throw new UsageError('--cache-dir is the base layer cache of --output; give --output too');
  const functions = parseFunctions(await readFunctionInput(io, positionals[0]!));
  if (output && functions.length > 1) throw new UsageError(`--output ${output.spec} holds one image, and the file has ${functions.length} Functions; build them one file at a time`);
  const catalog = loadCatalog(io, values.runtimes);
  const { config: dockerConfig } = readDockerConfigFlag(io, values['docker-config']);
  const registries = registrySettings(io, values);

  const results: BuildResult[] = [];
  for (const fn of functions) {
    const display = createDisplay(io.stderr, functionId(fn));
    let result: BuildResult;
    try {
      result = await buildFunctionImage(fn, {
        registry: values.registry,
        ...(values['pull-registry'] === undefined ? {} : { pullRegistry: values['pull-registry'] }),
        catalog,
        dockerConfig,
        registries,
        download: { allowPrivateAddresses: values['allow-private-addresses'] === true },
        push: !values['no-push'],
        ...(engine === undefined ? {} : { engine }),
        ...(output === undefined ? {} : { output, cacheDir: values['cache-dir'] === undefined ? defaultCacheDir(io.env) : resolve(io.cwd, values['cache-dir']) }),
        ...(values['installed-dir'] === undefined ? {} : { installedDir: resolve(io.cwd, values['installed-dir']) }),
        ...(values['no-install'] ? { runInstall: false } : {}),
        ...(values.platforms === undefined ? {} : { platforms: values.platforms.split(',').map((p) => p.trim()).filter(Boolean) }),
        docker: io.env,
        signal: io.signal,
        timeoutMs,
        onProgress: display.progress,
        log: display.log,
      });
    } finally {
      display.finish();
    }
    results.push(result);
    io.stderr.write(`${result.function}: ${summary(result)}\n`);
    if (!values.json) io.stdout.write(`${result.reference}\n`);
  }
  if (values.json) io.stdout.write(`${JSON.stringify(results.length === 1 ? results[0] : results, null, 2)}\n`);
  return EXIT_OK;
}

function summary(result: BuildResult): string {
  if (result.prebuilt) return `prebuilt image ${result.image}, nothing to build`;
  const seconds = (result.timings.totalMs / 1000).toFixed(1);
  if (result.cached) return `${result.image} exists already (${seconds}s)`;
  if (result.output) {
    const { format, path, bytes } = result.output;
    return `wrote ${result.image} to ${format}:${path} (${seconds}s; base layers: ${mib(bytes.downloaded)} downloaded, ${mib(bytes.cached)} from the cache)`;
  }
  if (!result.pushed) return `built ${result.image} in the local Docker Engine (image ID ${result.digest}, ${seconds}s)`;
  return `built and pushed ${result.reference} (${seconds}s: build ${(result.timings.buildMs / 1000).toFixed(1)}s, push ${(result.timings.pushMs / 1000).toFixed(1)}s)`;
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export const command: Command = { summary: 'build and push the image of a Function (unless it exists)', usage, run };
