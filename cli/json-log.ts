// The in-cluster commands log one JSON object per line on stdout, for log collectors and
// `kubectl logs`. Fields come from this code and from the library's log events, none of which
// carries a secret; `time`, `level` and `event` are always present.
import type { BuildLogEvent, BuildProgress } from '../lib/build.ts';

export type Level = 'debug' | 'info' | 'warn' | 'error';
export type JsonLog = (level: Level, event: string, fields?: Record<string, unknown>) => void;

export function createJsonLog(stream: NodeJS.WritableStream): JsonLog {
  return (level, event, fields = {}) => {
    const line = JSON.stringify({ time: new Date().toISOString(), level, event, ...fields }, (_key, value: unknown) =>
      value instanceof Error ? { name: value.name, message: value.message } : typeof value === 'bigint' ? String(value) : value,
    );
    stream.write(`${line}\n`);
  };
}

/** The library's structured events, as they are. */
export function libraryLog(log: JsonLog): (event: BuildLogEvent) => void {
  return ({ event, level, ...fields }) => log(level, event, fields);
}

/**
 * Build progress without the byte counters: a line per Dockerfile step, per line the build prints,
 * and per layer state change ("Pushed", "Layer already exists"), not per chunk transferred.
 */
export function progressLog(log: JsonLog): (event: BuildProgress) => void {
  const layerStates = new Map<string, string>();
  return (event) => {
    switch (event.kind) {
      case 'phase':
        log('info', 'phase', { phase: event.phase, message: event.message });
        break;
      case 'step':
        log('info', 'build-step', { step: event.step, steps: event.steps, instruction: event.instruction });
        break;
      case 'output':
        log('debug', 'build-output', { line: event.line });
        break;
      case 'pull':
      case 'push': {
        const key = `${event.kind} ${event.layer}`;
        if (layerStates.get(key) === event.status) return;
        layerStates.set(key, event.status);
        log('debug', `layer-${event.kind}`, { layer: event.layer, status: event.status, ...(event.total !== undefined ? { bytes: event.total } : {}) });
        break;
      }
    }
  };
}
