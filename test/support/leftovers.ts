// What the tests of this process left behind: rig servers still running, child processes, Docker
// containers, images and volumes labelled TEST_LABEL, rig temp dirs, /etc/docker/certs.d entries.
// Only things made after `since` count, so older debris from elsewhere is not blamed on this run.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { docker, TEST_LABEL } from './docker.ts';
import { runningDockerTlsEndpoints } from './docker-tls.ts';
import { DOCKER_CERTS_ROOT, runningRegistries } from './registry.ts';
import { runningTokenServers } from './token-server.ts';

/** Every temp dir or file the rig makes starts with this; other helpers should use it too. */
export const RIG_TEMP_PREFIX = 'fib-';

/** When this process started (ms since the epoch). */
export const PROCESS_START_MS = Date.now() - process.uptime() * 1000;

export interface Leftover {
  kind: 'registry' | 'token-server' | 'docker-tls-endpoint' | 'process' | 'container' | 'image' | 'volume' | 'temp' | 'docker-certs';
  what: string;
}

function createdMs(path: string): number {
  const stat = statSync(path);
  return stat.birthtimeMs > 0 ? stat.birthtimeMs : stat.ctimeMs;
}

/** State and parent of a process from /proc/<pid>/stat; undefined when it is gone. */
function procStat(pid: number | string): { state: string; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The fields after the parenthesised command name, which may hold spaces and parentheses.
    const [state = '', ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state, ppid: Number(ppid) };
  } catch {
    return undefined;
  }
}

function procPids(): number[] {
  try {
    return readdirSync('/proc').filter((entry) => /^\d+$/.test(entry)).map(Number);
  } catch {
    return [];
  }
}

/** Processes whose parent is this one (Linux /proc). */
export function childProcesses(): { pid: number; command: string }[] {
  const children: { pid: number; command: string }[] = [];
  for (const pid of procPids()) {
    const stat = procStat(pid);
    if (stat?.ppid !== process.pid || stat.state === 'Z') continue; // a zombie has exited, only not reaped yet
    try {
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
      children.push({ pid, command });
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

/** This process and the processes it descends from (npm, the `sh -c` npm runs scripts with, ...). */
export function ownLineage(): Set<number> {
  const lineage = new Set<number>();
  for (let pid = process.pid; pid > 0 && !lineage.has(pid); pid = procStat(pid)?.ppid ?? 0) lineage.add(pid);
  return lineage;
}

/** Whether a command line (argv) is a Node process running test/run.ts, the rig's test runner. */
export function isTestRun(argv: string[]): boolean {
  const [program = '', ...args] = argv;
  const script = args.find((arg) => !arg.startsWith('-'));
  return basename(program) === 'node' && (script === 'test/run.ts' || script?.endsWith('/test/run.ts') === true);
}

/**
 * Other test runs on this machine (their Docker objects and temp dirs cannot be told from ours).
 * Only Node processes running test/run.ts count, and never this process's own lineage: `npm test`
 * runs the script as `sh -c "node test/run.ts"`, and that shell (whose argv also names test/run.ts)
 * stays alive as our parent.
 */
export function otherTestRuns(): number[] {
  const lineage = ownLineage();
  const others: number[] = [];
  for (const pid of procPids()) {
    if (lineage.has(pid)) continue;
    try {
      if (isTestRun(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean))) others.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return others;
}

type DockerKind = 'container' | 'image' | 'volume';

// Per kind: how to list the labelled objects, and what inspect shows of one (id, creation, name).
// Images with -a: an intermediate image of a labelled build carries the label too.
const DOCKER_KINDS: Record<DockerKind, { list: string[]; format: string }> = {
  container: { list: ['ps', '-a', '-q', '--no-trunc'], format: '{{.Id}}\t{{.Created}}\t{{.Name}}' },
  image: { list: ['images', '-a', '-q', '--no-trunc'], format: '{{.Id}}\t{{.Created}}\t{{.RepoTags}}' },
  volume: { list: ['volume', 'ls', '-q'], format: '{{.Name}}\t{{.CreatedAt}}\t{{.Mountpoint}}' },
};

async function labelled(kind: DockerKind, since: number): Promise<Leftover[]> {
  const { list, format } = DOCKER_KINDS[kind];
  const ids = (await docker([...list, '--filter', `label=${TEST_LABEL}`])).split('\n').filter(Boolean);
  // An object removed between the two calls makes inspect fail for it alone: ask one by one.
  const found: Leftover[] = [];
  for (const id of [...new Set(ids)]) {
    const line = await docker([kind, 'inspect', '--format', format, id]).catch(() => '');
    const [fullId, created, name] = line.trim().split('\t');
    if (!fullId || !created) continue;
    if (Date.parse(created) >= since) found.push({ kind, what: `${name} ${fullId.slice(0, 19)} created ${created}` });
  }
  return found;
}

export async function findLeftovers(since = PROCESS_START_MS): Promise<Leftover[]> {
  const found: Leftover[] = [];
  for (const registry of runningRegistries()) found.push({ kind: 'registry', what: `${registry.kind} registry ${registry.url} (pid ${registry.pid})` });
  for (const server of runningTokenServers()) found.push({ kind: 'token-server', what: server.realm });
  for (const endpoint of runningDockerTlsEndpoints()) found.push({ kind: 'docker-tls-endpoint', what: endpoint.env.DOCKER_HOST });
  for (const child of childProcesses()) found.push({ kind: 'process', what: `pid ${child.pid}: ${child.command}` });
  for (const kind of ['container', 'image', 'volume'] as const) found.push(...(await labelled(kind, since)));
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(RIG_TEMP_PREFIX)) continue;
    try {
      if (createdMs(join(tmpdir(), name)) >= since) found.push({ kind: 'temp', what: join(tmpdir(), name) });
    } catch {
      // removed meanwhile
    }
  }
  let certs: string[] = [];
  try {
    certs = readdirSync(DOCKER_CERTS_ROOT);
  } catch {
    // no certs.d at all
  }
  for (const name of certs) {
    if (!/^(127\.\d+\.\d+\.\d+|localhost):\d+$/.test(name)) continue;
    try {
      if (createdMs(join(DOCKER_CERTS_ROOT, name)) >= since) found.push({ kind: 'docker-certs', what: join(DOCKER_CERTS_ROOT, name) });
    } catch {
      // removed meanwhile
    }
  }
  return found;
}
