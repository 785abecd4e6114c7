// A rig process (registry, dockerd, containerd) started by a test: its output kept for diagnosis,
// listed in `live` until it exits (so an exit handler can kill whatever a crashed test left).
import { spawn, type ChildProcess } from 'node:child_process';

export interface RigProcess {
  child: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
}

export function spawnRigProcess(command: string, args: string[], log: string[], live: Set<ChildProcess>): RigProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const collect = (chunk: Buffer) => log.push(...chunk.toString().split('\n').filter(Boolean));
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  live.add(child);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      live.delete(child);
      resolve();
    }),
  );
  return { child, exited };
}
