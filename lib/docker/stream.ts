// The Engine answers /build and /images/{name}/push with HTTP 200 and then streams JSON messages;
// success or failure is only known from those messages, so the stream is always read to its end.
import type { Readable } from 'node:stream';
import type { DockerProgress } from './progress.ts';

/** One message of the Engine's JSON progress stream (pkg/jsonmessage). */
export interface EngineMessage {
  stream?: string;
  status?: string;
  id?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { code?: number; message?: string };
  aux?: Record<string, unknown>;
}

/** A message that says the request failed (the stream still goes on to its end). */
export function isFailure(message: EngineMessage): boolean {
  return message.error !== undefined || message.errorDetail !== undefined;
}

/** A layer's pull or push progress, when the message is one. */
export function layerProgress(kind: 'pull' | 'push', message: EngineMessage): DockerProgress | undefined {
  if (message.id === undefined || !message.status) return undefined;
  return { kind, layer: message.id, status: message.status, current: message.progressDetail?.current, total: message.progressDetail?.total };
}

/** How many of a failed step's last output lines an error keeps. */
export const OUTPUT_TAIL_LINES = 25;

/** A failed step's last output lines, as they follow its error message ('' when there are none). */
export function shownTail(tail: readonly string[]): string {
  return tail.length ? `\n--- last output of that step ---\n${tail.join('\n')}` : '';
}

/** The text of an error message, whichever of its two fields the daemon filled. */
export function errorText(message: EngineMessage): string {
  return (message.errorDetail?.message ?? message.error ?? 'unknown error').trim();
}

/**
 * Calls `onMessage` for every message until the stream ends. Rejects when the connection breaks
 * before the end or `signal` fires; in both cases the response is destroyed, which the daemon
 * sees as a cancelled request.
 */
export function readMessages(stream: Readable, onMessage: (message: EngineMessage) => void, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    let pending = '';
    let done = false;
    const finish = (error?: unknown) => {
      if (done) return;
      done = true;
      signal?.removeEventListener('abort', onAbort);
      if (error !== undefined) {
        stream.destroy();
        reject(error);
      } else resolve();
    };
    const onAbort = () => finish(signal?.reason ?? new Error('aborted'));
    const take = (line: string) => {
      const text = line.trim();
      if (!text) return;
      let message: EngineMessage;
      try {
        message = JSON.parse(text) as EngineMessage;
      } catch {
        // Not JSON (a proxy's error page, an old daemon): keep it as output rather than lose it.
        message = { stream: `${text}\n` };
      }
      try {
        onMessage(message);
      } catch (error) {
        finish(error);
      }
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      pending += chunk;
      let newline: number;
      while (!done && (newline = pending.indexOf('\n')) >= 0) {
        take(pending.slice(0, newline));
        pending = pending.slice(newline + 1);
      }
    });
    stream.on('end', () => {
      take(pending);
      finish();
    });
    stream.on('error', (error) => finish(error));
    // A socket closed without 'end' means the daemon went away mid-stream.
    stream.on('close', () => finish(new Error('the Docker Engine closed the connection before the end of the stream')));
  });
}
