// function-image-builder prune [--yes]: removes the function images nothing uses any more, keeping
// the newest few (lib/kubernetes/prune.ts); a dry run unless --yes.
import { KubeConfig } from '@kubernetes/client-node';
import { EXIT_OK } from '../../lib/errors.ts';
import { readBuilderConfig } from '../../lib/kubernetes/config.ts';
import { kubernetesError } from '../../lib/kubernetes/errors.ts';
import { DEFAULT_KEEP, pruneFunctionImages, type PrunedImage, type PruneReport } from '../../lib/kubernetes/prune.ts';
import { UsageError, type Command, type CommandIO } from '../command.ts';
import { parseCommandLine } from '../flags.ts';

const usage = `usage: function-image-builder prune [options]

Lists the cluster's Kubeless Functions and Deployments and, in each function's image repository,
the images the builder pushed (tags that are build hashes). An image stays when a Function's current
spec builds it, when a Deployment runs it (by tag or digest, under the push or the pull name), or when
it is among the --keep newest (by the image's creation time); the others are deleted by digest.
Without --yes nothing is deleted: the command prints what would go.

options:
  --yes                     delete (default: a dry run)
  --keep N                  images kept per repository beyond those in use (default ${DEFAULT_KEEP})
  --namespace NS            prune only the repositories of NS's Functions (what is in use is always
                            gathered from every namespace: same-named Functions share a repository)
  --kubeconfig FILE         default: KUBECONFIG, ~/.kube/config, or the pod's service account
  --secret NAME             registry Secret (default kubeless-registry-credentials)
  --secret-namespace NS     its namespace (default: --namespace, else "default")
  --registry HOST[/NS]      overrides kubeless-config's function-registry
  --json                    print the report as JSON

Settings (function-registry, function-registry-pull, runtime-images, registry-settings,
function-registry-tls-verify) come from the kubeless-config ConfigMap in namespace kubeless. A registry
that refuses deletes fails with E_REGISTRY_DELETE_UNSUPPORTED (exit 2). Deleting a manifest frees its
layers only when the registry garbage-collects them.`;

async function run(args: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseCommandLine(args, {
    yes: { type: 'boolean' },
    keep: { type: 'string' },
    namespace: { type: 'string' },
    kubeconfig: { type: 'string' },
    secret: { type: 'string' },
    'secret-namespace': { type: 'string' },
    registry: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (positionals.length > 0) throw new UsageError(`prune takes no arguments, not "${positionals.join(' ')}"`);
  let keep = DEFAULT_KEEP;
  if (values.keep !== undefined) {
    if (!/^\d+$/.test(values.keep)) throw new UsageError(`--keep takes a whole number of images (0 or more), not "${values.keep}"`);
    keep = Number(values.keep);
  }
  const kubeConfig = new KubeConfig();
  try {
    if (values.kubeconfig !== undefined) kubeConfig.loadFromFile(values.kubeconfig);
    else kubeConfig.loadFromDefault();
  } catch (error) {
    throw kubernetesError(error, `load the kubeconfig${values.kubeconfig === undefined ? '' : ` ${values.kubeconfig}`}`);
  }
  const config = await readBuilderConfig(kubeConfig, {
    namespace: values['secret-namespace'] ?? values.namespace ?? 'default',
    ...(values.secret === undefined ? {} : { secretName: values.secret }),
    ...(values.registry === undefined ? {} : { registry: values.registry }),
    // Prune starts no Job; the key is required for builds only.
    builderImage: 'unused-by-prune',
  });
  // Progress on stderr: a cluster's worth of repositories takes a while to list and date.
  const log = (event: Record<string, unknown>) => {
    if (event.event === 'prune-repository') io.stderr.write(`prune: reading ${String(event.repository)}\n`);
    if (event.event === 'prune-delete') io.stderr.write(`prune: deleted ${String(event.reference)}\n`);
    if (event.event === 'prune-skip') io.stderr.write(`prune: skipping ${String(event.function)}: ${String(event.reason)}\n`);
  };
  const report = await pruneFunctionImages(kubeConfig, config, { namespace: values.namespace, keep, delete: values.yes === true, signal: io.signal, log });
  io.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : describe(report));
  return EXIT_OK;
}

function describe(report: PruneReport): string {
  const lines: string[] = [];
  const line = (verb: string, image: PrunedImage) =>
    `  ${verb} ${image.reference}  created ${image.created ?? 'unknown'}  tags ${image.tags.map((t) => `${t.slice(0, 12)}…`).join(', ')}${image.kept ? `  (${image.kept.join(', ')})` : ''}`;
  let removed = 0;
  for (const repository of report.repositories) {
    lines.push(`${repository.repository} (${repository.functions.join(', ')}): ${repository.kept.length + repository.removed.length} images, ${repository.removed.length} ${report.dryRun ? 'to delete' : 'deleted'}`);
    for (const image of repository.removed) lines.push(line(report.dryRun ? 'would delete' : 'deleted', image));
    for (const image of repository.kept) lines.push(line('keep', image));
    removed += repository.removed.length;
  }
  for (const skip of report.skipped) lines.push(`skipped ${skip.function}: ${skip.reason}`);
  const count = `${removed} image${removed === 1 ? '' : 's'} in ${report.repositories.length} repositor${report.repositories.length === 1 ? 'y' : 'ies'}`;
  lines.push(report.dryRun ? `dry run: ${count} would be deleted; run again with --yes to delete them` : `deleted ${count}`);
  return `${lines.join('\n')}\n`;
}

export const command: Command = { summary: 'delete function images no Function or Deployment uses (dry run unless --yes)', usage, run };
