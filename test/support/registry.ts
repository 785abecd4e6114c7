// Real registries for tests: Debian's docker-registry (distribution 2.8) on a loopback port,
// each with its own storage directory, stopped and removed by the returned handle.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor } from './net.ts';

export type RegistryKind = 'anonymous' | 'basic' | 'tls' | 'token';

export interface RegistryHandle {
  kind: RegistryKind;
  /** host:port, e.g. 127.0.0.1:40123 — the registry part of image references. */
  host: string;
  /** Base URL, http:// or https://. */
  url: string;
  port: number;
  dir: string;
  /** Lines the registry process printed, for diagnosing a failed test. */
  log: string[];
  stop(): Promise<void>;
}

export const REGISTRY_BINARY = process.env.REGISTRY_BINARY ?? 'docker-registry';

export async function startRegistry(kind: RegistryKind = 'anonymous'): Promise<RegistryHandle> {
  if (kind !== 'anonymous') throw new Error(`registry kind ${kind} is not available yet`);
  const dir = mkdtempSync(join(tmpdir(), 'fib-registry-'));
  const port = await freePort();
  const config = [
    'version: 0.1',
    'log: {level: warn, accesslog: {disabled: true}}',
    'storage:',
    `  filesystem: {rootdirectory: ${JSON.stringify(join(dir, 'data'))}}`,
    '  delete: {enabled: true}',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'config.yml'), config);
  const child = spawn(REGISTRY_BINARY, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  const collect = (chunk: Buffer) => log.push(...chunk.toString().split('\n').filter(Boolean));
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    await kill(child, exited);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(`registry on ${url}`, async () => {
      if (child.exitCode !== null) throw new Error(`registry exited: ${log.join('\n')}`);
      const response = await fetch(`${url}/v2/`);
      await response.body?.cancel();
      return response.status === 200;
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { kind, host: `127.0.0.1:${port}`, url, port, dir, log, stop };
}

async function kill(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
