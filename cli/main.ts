#!/usr/bin/env node
// function-image-builder <command> [args]: the command-line tool and the Job entrypoint.
// Commands live in cli/commands/<name>.ts and are registered in the table below; each gets its
// arguments and the process streams and returns an exit code (lib/errors.ts exitCodeFor).
import { realpathSync } from 'node:fs';
import { BuilderError, EXIT_INTERNAL_ERROR, EXIT_OK, EXIT_USER_ERROR, exitCodeFor } from '../lib/errors.ts';
import { UsageError, type Command, type CommandIO } from './command.ts';

/** name → loader; loaded on demand so one command's dependencies do not slow the others. */
export const commands: Record<string, () => Promise<{ command: Command }>> = {
  build: () => import('./commands/build.ts'),
  tag: () => import('./commands/tag.ts'),
  job: () => import('./commands/job.ts'),
  'job-sources': () => import('./commands/job-sources.ts'),
  wait: () => import('./commands/wait.ts'),
  'job-manifest': () => import('./commands/job-manifest.ts'),
  prune: () => import('./commands/prune.ts'),
};

async function usage(): Promise<string> {
  const lines = ['usage: function-image-builder <command> [options]', '', 'commands:'];
  for (const [name, load] of Object.entries(commands)) lines.push(`  ${name.padEnd(14)} ${(await load()).command.summary}`);
  lines.push('', 'Run `function-image-builder <command> --help` for its options.');
  return lines.join('\n');
}

export async function main(argv: string[], io: CommandIO): Promise<number> {
  const [name, ...args] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? io.stderr : io.stdout).write(`${await usage()}\n`);
    return name === undefined ? EXIT_USER_ERROR : EXIT_OK;
  }
  const load = commands[name];
  if (!load) {
    io.stderr.write(`function-image-builder: unknown command "${name}"\n\n${await usage()}\n`);
    return EXIT_USER_ERROR;
  }
  const { command } = await load();
  if (args.includes('--help') || args.includes('-h')) {
    io.stdout.write(`${command.usage}\n`);
    return EXIT_OK;
  }
  try {
    return await command.run(args, io);
  } catch (error) {
    reportError(error, io, command);
    return exitCodeFor(error);
  }
}

/** One line per error (code, message); the cause only when it adds something. */
function reportError(error: unknown, io: CommandIO, command?: Command): void {
  if (error instanceof BuilderError) {
    io.stderr.write(`function-image-builder: ${error.code}: ${error.message}\n`);
    if (error instanceof UsageError && command) io.stderr.write(`\n${command.usage}\n`);
  } else {
    io.stderr.write(`function-image-builder: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
}

function isEntryPoint(): boolean {
  const invoked = process.argv[1];
  if (!invoked) return false;
  try {
    return realpathSync(invoked) === realpathSync(import.meta.filename);
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const controller = new AbortController();
  let interrupted = 0;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      // A second Ctrl-C does not wait for the cleanup.
      if (++interrupted > 1) process.exit(130);
      controller.abort(new Error(`interrupted by ${signal}`));
    });
  }
  main(process.argv.slice(2), {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    signal: controller.signal,
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`function-image-builder: internal error: ${String(error)}\n`);
      process.exitCode = EXIT_INTERNAL_ERROR;
    },
  );
}
