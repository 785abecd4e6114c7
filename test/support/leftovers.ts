// What the tests of this process left behind: rig servers still running, child processes, Docker
// containers and images labelled TEST_LABEL, rig temp dirs, /etc/docker/certs.d entries.
// Only things made after `since` count, so older debris from elsewhere is not blamed on this run.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { docker, TEST_LABEL } from './docker.ts';
import { runningDockerTlsEndpoints } from './docker-tls.ts';
import { DOCKER_CERTS_ROOT, runningRegistries } from './registry.ts';
import { runningTokenServers } from './token-server.ts';

/** Every temp dir or file the rig makes starts with this; other helpers should use it too. */
export const RIG_TEMP_PREFIX = 'fib-';

/** When this process started (ms since the epoch). */
export const PROCESS_START_MS = Date.now() - process.uptime() * 1000;

export interface Leftover {
  kind: 'registry' | 'token-server' | 'docker-tls-endpoint' | 'process' | 'container' | 'image' | 'temp' | 'docker-certs';
  what: string;
}

function createdMs(path: string): number {
  const stat = statSync(path);
  return stat.birthtimeMs > 0 ? stat.birthtimeMs : stat.ctimeMs;
}

/** Processes whose parent is this one (Linux /proc). */
export function childProcesses(): { pid: number; command: string }[] {
  const children: { pid: number; command: string }[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return children;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4 (ppid) follows the parenthesised command name, which may hold spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
      if (state === 'Z') continue; // exited, only not reaped yet
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      children.push({ pid: Number(entry), command });
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

/** Other test runs on this machine (their Docker objects and temp dirs cannot be told from ours). */
export function otherTestRuns(): number[] {
  const others: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (command.some((part) => part.endsWith('test/run.ts'))) others.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return others;
}

async function labelled(kind: 'container' | 'image', since: number): Promise<Leftover[]> {
  const ids = (
    kind === 'container'
      ? await docker(['ps', '-a', '-q', '--no-trunc', '--filter', `label=${TEST_LABEL}`])
      : await docker(['images', '-q', '--no-trunc', '--filter', `label=${TEST_LABEL}`])
  )
    .split('\n')
    .filter(Boolean);
  if (ids.length === 0) return [];
  const format = kind === 'container' ? '{{.Id}}\t{{.Created}}\t{{.Name}}' : '{{.Id}}\t{{.Created}}\t{{.RepoTags}}';
  // An object removed between the two calls makes inspect fail for it alone: ask one by one.
  const found: Leftover[] = [];
  for (const id of [...new Set(ids)]) {
    const line = await docker([kind === 'container' ? 'container' : 'image', 'inspect', '--format', format, id]).catch(() => '');
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
  found.push(...(await labelled('container', since)), ...(await labelled('image', since)));
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
