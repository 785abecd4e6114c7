// function-image-builder tag <file>: the tag each Function's image has (or will have), without
// building anything: what a controller computes to ask the registry "built already?".
import { EXIT_OK } from '../../lib/errors.ts';
import { parseFunctions } from '../../lib/function/parse.ts';
import { functionId } from '../../lib/function/spec.ts';
import { functionImageTag } from '../../lib/image/identity.ts';
import { resolveTarget } from '../../lib/target.ts';
import { UsageError, type Command, type CommandIO } from '../command.ts';
import { loadCatalog, readDockerConfigFlag, parseCommandLine, readFunctionInput, registryOptions, registrySettings } from '../flags.ts';

const usage = `usage: function-image-builder tag <file|-> [options]

Prints the image tag of each Kubeless Function in <file>: the sha256 of everything that goes into its
image. Runtime images given by tag are resolved to their digests at their registry (nothing else is
downloaded; a url source with a checksum is identified by the checksum).

options:
  --registry HOST[/NS]      also print the full image name, HOST/NS/<function>:<tag>
  --runtimes FILE           runtime catalog (default: the upstream Kubeless runtimes)
  --docker-config FILE      credentials for resolving runtime image tags
  --insecure-registry HOST, --tls-no-verify HOST, --ca HOST=FILE, --allow-private-addresses   as for build
  --json                    print {function, tag, image?} as JSON`;

async function run(args: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseCommandLine(args, registryOptions);
  if (positionals.length !== 1) throw new UsageError('tag needs one Function file (or "-" for stdin)');
  const functions = parseFunctions(await readFunctionInput(io, positionals[0]!));
  const catalog = loadCatalog(io, values.runtimes);
  const { config: dockerConfig } = readDockerConfigFlag(io, values['docker-config']);
  const registries = registrySettings(io, values);
  const results: { function: string; tag: string; image?: string }[] = [];
  for (const fn of functions) {
    const download = { allowPrivateAddresses: values['allow-private-addresses'] === true };
    const tag = await functionImageTag(fn, { catalog, dockerConfig, registries, download, signal: io.signal });
    const entry: { function: string; tag: string; image?: string } = { function: functionId(fn), tag };
    if (values.registry) entry.image = `${resolveTarget({ registry: values.registry, dockerConfig, functionName: fn.name }).repository}:${tag}`;
    results.push(entry);
    if (!values.json) io.stdout.write(`${entry.image ?? tag}\n`);
  }
  if (values.json) io.stdout.write(`${JSON.stringify(results.length === 1 ? results[0] : results, null, 2)}\n`);
  return EXIT_OK;
}

export const command: Command = { summary: 'print the image tag of a Function without building', usage, run };
