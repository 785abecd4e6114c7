// Progress on stderr: on a terminal one line that updates in place, elsewhere (CI, a Job's log)
// plain lines that read well afterwards, including the output of the install step.
import type { BuildLogEvent, BuildProgress } from '../lib/build.ts';

export interface Display {
  progress(event: BuildProgress): void;
  log(event: BuildLogEvent): void;
  /** Ends the updating line so that what follows starts on a clean one. */
  finish(): void;
}

type Stream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

export function createDisplay(stream: Stream, prefix: string): Display {
  return stream.isTTY ? terminalDisplay(stream, prefix) : plainDisplay(stream, prefix);
}

function plainDisplay(stream: Stream, prefix: string): Display {
  const write = (line: string) => stream.write(`${prefix}: ${line}\n`);
  return {
    progress(event) {
      if (event.kind === 'phase') write(event.message);
      else if (event.kind === 'step') write(`step ${event.step}/${event.steps}: ${event.instruction}`);
      else if (event.kind === 'output') write(`  ${event.line}`);
    },
    log: (event) => {
      const line = describe(event);
      if (line) write(line);
    },
    finish() {},
  };
}

function terminalDisplay(stream: Stream, prefix: string): Display {
  let status = '';
  let step = '';
  const layers = new Map<string, { current: number; total: number }>();
  let lastDraw = 0;
  const draw = (force = false) => {
    const now = Date.now();
    if (!force && now - lastDraw < 80) return;
    lastDraw = now;
    const width = Math.max(20, (stream.columns ?? 80) - 1);
    const line = `${prefix}: ${status}`;
    stream.write(`\r\x1b[2K${line.length > width ? `${line.slice(0, width - 1)}…` : line}`);
  };
  const clear = () => stream.write('\r\x1b[2K');
  return {
    progress(event) {
      if (event.kind === 'phase') {
        layers.clear();
        status = event.message;
        draw(true);
      } else if (event.kind === 'step') {
        step = `step ${event.step}/${event.steps} ${event.instruction}`;
        status = step;
        draw(true);
      } else if (event.kind === 'output') {
        status = `${step} | ${event.line.trim()}`;
        draw();
      } else {
        const entry = layers.get(event.layer) ?? { current: 0, total: 0 };
        if (event.current !== undefined) entry.current = event.current;
        if (event.total !== undefined) entry.total = event.total;
        layers.set(event.layer, entry);
        let current = 0;
        let total = 0;
        for (const layer of layers.values()) {
          current += Math.min(layer.current, layer.total || layer.current);
          total += layer.total;
        }
        const verb = event.kind === 'push' ? 'pushing' : 'pulling';
        status = `${event.kind === 'pull' && step ? `${step}: ` : ''}${verb} ${layers.size} layer(s) ${megabytes(current)}/${megabytes(total)} MB`;
        draw();
      }
    },
    log(event) {
      const line = describe(event);
      if (!line || event.level !== 'warn') return;
      clear();
      stream.write(`${prefix}: ${line}\n`);
      draw(true);
    },
    finish() {
      if (status) clear();
      status = '';
    },
  };
}

function describe(event: BuildLogEvent): string | undefined {
  if (event.level === 'warn') return `warning: ${String(event.message ?? event.event)}`;
  if (event.event === 'credentials' && typeof event.purpose === 'string') {
    return event.key ? `registry ${String(event.registry)} (${event.purpose}): credential "${String(event.key)}"` : `registry ${String(event.registry)} (${event.purpose}): no credential`;
  }
  return undefined;
}

function megabytes(bytes: number): string {
  return (bytes / 1_000_000).toFixed(1);
}
