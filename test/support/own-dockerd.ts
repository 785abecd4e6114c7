// A Docker daemon of the test's own, for faults that must not touch the shared one: frozen
// (SIGSTOP), killed (SIGKILL) or restarted mid-build or mid-push. Everything of it lives under a
// fib- temp dir: data root, exec root, pid file, unix socket, and a containerd of its own started
// beside it (as containerd.service runs beside docker.service on a host), so a killed dockerd
// leaves its containers to containerd and a restarted one takes them over again.
//
// Networking: its own bridge interface (fib + 8 hex) with iptables off. Never `--bridge none`:
// dockerd then deletes the host's docker0 interface, which the shared daemon uses.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnRigProcess, type RigProcess } from './child-process.ts';
import { exec } from './docker.ts';
import { RIG_TEMP_PREFIX } from './leftovers.ts';
import { waitFor } from './net.ts';

export interface OwnDockerd {
  /** `unix:///tmp/fib-dockerd-.../docker.sock` */
  host: string;
  /** The environment that points the library and the docker CLI at this daemon. */
  env: { DOCKER_HOST: string };
  /** Runs the docker CLI against this daemon; throws with its stderr when it fails. */
  docker(args: string[], options?: { input?: string | Buffer }): Promise<string>;
  freeze(): void;
  thaw(): void;
  /** SIGKILL: connections drop at once, the containers stay with containerd. */
  kill(): Promise<void>;
  /** Starts dockerd again after kill(). */
  start(): Promise<void>;
  /** Stops dockerd (SIGTERM, as a service restart does: it kills the running containers) and starts it again. */
  restart(): Promise<void>;
  log: string[];
  stop(): Promise<void>;
}

const bridges = new Set<string>();
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
});

async function terminate(running: RigProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!running || running.child.exitCode !== null || running.child.signalCode !== null) return;
  running.child.kill('SIGCONT');
  running.child.kill(signal);
  const timer = setTimeout(() => running.child.kill('SIGKILL'), 20_000);
  await running.exited;
  clearTimeout(timer);
}

/** Processes whose command line names `dir` (containerd's shims of this daemon's containers). */
function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

export async function startOwnDockerd(): Promise<OwnDockerd> {
  const dir = mkdtempSync(join(tmpdir(), `${RIG_TEMP_PREFIX}dockerd-`));
  const socket = join(dir, 'docker.sock');
  const containerdSocket = join(dir, 'containerd.sock');
  const host = `unix://${socket}`;
  const bridge = `fib${randomBytes(4).toString('hex')}`;
  const log: string[] = [];
  let containerd: RigProcess | undefined;
  let dockerd: RigProcess | undefined;

  const docker = async (args: string[], options: { input?: string | Buffer } = {}) => {
    const result = await exec('docker', ['-H', host, ...args], { env: { ...process.env, DOCKER_BUILDKIT: '0' }, timeoutMs: 300_000, ...options });
    if (result.code !== 0) throw new Error(`docker ${args.join(' ')} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`);
    return result.stdout;
  };

  const start = async () => {
    dockerd = spawnRigProcess('dockerd', [
      '--data-root', join(dir, 'data'),
      '--exec-root', join(dir, 'exec'),
      '--pidfile', join(dir, 'dockerd.pid'),
      '--host', host,
      '--containerd', containerdSocket,
      '--bridge', bridge,
      '--iptables=false',
      '--ip-masq=false',
      '--ip-forward=false',
      '--storage-driver', 'overlay2',
    ], log, children);
    const started = dockerd.child;
    await waitFor(`dockerd on ${host}`, async () => {
      if (started.exitCode !== null) return true;
      return (await exec('docker', ['-H', host, 'version', '--format', '{{.Server.Version}}'], { timeoutMs: 5_000 })).code === 0;
    }, 60_000);
    if (started.exitCode !== null) throw new Error(`dockerd exited with ${started.exitCode}: ${log.slice(-20).join('\n')}`);
  };

  const stop = async () => {
    // Containers first (a killed daemon's may still run), then dockerd, containerd, stray shims.
    if (dockerd && dockerd.child.exitCode === null && dockerd.child.signalCode === null) {
      const ids = (await docker(['ps', '-aq']).catch(() => '')).split('\n').filter(Boolean);
      if (ids.length > 0) await docker(['rm', '-f', ...ids]).catch(() => undefined);
    }
    await terminate(dockerd, 'SIGTERM');
    await terminate(containerd, 'SIGTERM');
    for (const pid of processesUnder(dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    // Whatever is still mounted under the roots (overlay layers, netns, shm).
    const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((line) => line.split(' ')[1] ?? '').filter((path) => path.startsWith(dir)).reverse();
    for (const mount of mounts) await exec('umount', ['-l', mount]);
    rmSync(dir, { recursive: true, force: true });
    if (bridges.delete(bridge)) await exec('ip', ['link', 'del', bridge]);
  };

  try {
    const added = await exec('ip', ['link', 'add', 'name', bridge, 'type', 'bridge']);
    if (added.code !== 0) throw new Error(`ip link add ${bridge}: ${added.stderr}`);
    bridges.add(bridge);
    await exec('ip', ['addr', 'add', `10.${randomInt(200, 250)}.${randomInt(0, 256)}.1/24`, 'dev', bridge]);
    await exec('ip', ['link', 'set', bridge, 'up']);
    writeFileSync(join(dir, 'containerd.toml'), [
      'version = 2',
      `root = ${JSON.stringify(join(dir, 'containerd-root'))}`,
      `state = ${JSON.stringify(join(dir, 'containerd-state'))}`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = ${JSON.stringify(containerdSocket)}`,
      '[ttrpc]',
      `  address = ${JSON.stringify(`${containerdSocket}.ttrpc`)}`,
      '[debug]',
      `  address = ${JSON.stringify(join(dir, 'containerd-debug.sock'))}`,
      '',
    ].join('\n'));
    containerd = spawnRigProcess('containerd', ['--config', join(dir, 'containerd.toml')], log, children);
    const started = containerd.child;
    await waitFor('containerd', async () => started.exitCode !== null || readdirSync(dir).includes('containerd.sock'), 30_000);
    if (started.exitCode !== null) throw new Error(`containerd exited with ${started.exitCode}: ${log.slice(-20).join('\n')}`);
    await start();
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    host,
    env: { DOCKER_HOST: host },
    docker,
    log,
    freeze: () => dockerd?.child.kill('SIGSTOP'),
    thaw: () => dockerd?.child.kill('SIGCONT'),
    kill: () => terminate(dockerd, 'SIGKILL'),
    start,
    async restart() {
      await terminate(dockerd, 'SIGTERM');
      await start();
    },
    stop,
  };
}

/** Bridges of own daemons still there when the process exits (a crashed test): removed. */
process.on('exit', () => {
  for (const bridge of bridges) spawn('ip', ['link', 'del', bridge], { stdio: 'ignore', detached: true }).unref();
});
