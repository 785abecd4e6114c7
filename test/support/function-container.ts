// Runs a function image the way a kubelet runs a Kubeless function's pod: the image's own
// command, the function env (FUNC_HANDLER, MOD_NAME, ...), its port (8080, or the FUNC_PORT the test
// sets) published on loopback. Files can be put into /kubeless before the start (docker cp, so it
// also works with a remote daemon) or a volume mounted there. The container is labelled TEST_LABEL and removed by stop(); it is not
// started with --rm, so that a function that crashes on start still has its output to show.
import { randomBytes } from 'node:crypto';
import { docker, exec, TEST_LABEL } from './docker.ts';

export interface FunctionContainer {
  id: string;
  name: string;
  /** http://127.0.0.1:<host port> of the function's port. */
  url: string;
  /** What the container printed so far. */
  logs(): Promise<string>;
  /** Removes the container (idempotent). */
  stop(): Promise<void>;
}

export interface FunctionContainerOptions {
  /** Environment of the function container (FUNC_HANDLER, MOD_NAME, FUNC_TIMEOUT, ...). */
  env?: Record<string, string>;
  /** A host directory whose contents are copied into /kubeless before the start. */
  files?: string;
  /** A volume (or host path) mounted at /kubeless. */
  volume?: string;
  /** The port the function listens on in the container (give FUNC_PORT the same). Default 8080. */
  port?: number;
  /** How long to wait for GET /healthz to answer 200. */
  readyTimeoutMs?: number;
}

export async function startFunctionContainer(image: string, options: FunctionContainerOptions = {}): Promise<FunctionContainer> {
  const name = `fib-function-${randomBytes(5).toString('hex')}`;
  const env = Object.entries(options.env ?? {}).flatMap(([k, v]) => ['--env', `${k}=${v}`]);
  const volume = options.volume ? ['--volume', `${options.volume}:/kubeless`] : [];
  const containerPort = options.port ?? 8080;
  const id = (
    await docker(['create', '--name', name, '--label', `${TEST_LABEL}=function-container`, '--publish', `127.0.0.1::${containerPort}`, ...env, ...volume, image])
  ).trim();
  const stop = async () => {
    await exec('docker', ['rm', '--force', id]);
  };
  const logs = async () => {
    const result = await exec('docker', ['logs', id]);
    return result.stdout + result.stderr;
  };
  try {
    if (options.files) await docker(['cp', `${options.files}/.`, `${id}:/kubeless`]);
    await docker(['start', id]);
    const deadline = Date.now() + (options.readyTimeoutMs ?? 15_000);
    let url: string | undefined;
    for (;;) {
      // A container that already exited has no published port any more: ask only while it runs.
      const running = (await docker(['inspect', '--format', '{{.State.Running}}', id])).trim() === 'true';
      if (running && !url) {
        const port = /:(\d+)\s*$/m.exec(await docker(['port', id, `${containerPort}/tcp`]).catch(() => ''))?.[1];
        if (port) url = `http://127.0.0.1:${port}`;
      }
      const status = url
        ? await fetch(`${url}/healthz`).then(
            async (response) => {
              await response.body?.cancel();
              return response.status;
            },
            () => 0,
          )
        : 0;
      if (url && status === 200) return { id, name, url, logs, stop };
      if (!running || Date.now() > deadline) {
        const why = running ? 'did not answer GET /healthz with 200 in time' : 'exited before answering GET /healthz';
        throw new Error(`function container ${name} (${image}) ${why}; its output:\n${await logs()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Runs `image` as a function container, POSTs `body` to it and returns the answer; the container goes. */
export async function callFunctionImage(image: string, body: string, contentType = 'text/plain'): Promise<{ status: number; text: string }> {
  const container = await startFunctionContainer(image);
  try {
    const response = await fetch(container.url, { method: 'POST', body, headers: { 'content-type': contentType } });
    return { status: response.status, text: await response.text() };
  } finally {
    await container.stop();
  }
}
