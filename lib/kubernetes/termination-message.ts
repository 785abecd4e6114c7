// The build Job's termination message, both ends of it: the in-cluster entrypoint (cli/commands/job.ts,
// job-sources) encodes its outcome here, and the runner (lib/kubernetes/job-outcome.ts) decodes it
// from the pod's status. One module so that the format cannot drift between writer and reader.

/** The kubelet keeps at most this many bytes of a termination message. */
const TERMINATION_MESSAGE_MAX = 4096;

/** What the Job writes to its termination message on success. */
export interface JobResult {
  image: string;
  digest: string;
  reference: string;
  cached: boolean;
}

/** What the Job writes to its termination message on failure. */
export interface JobFailure {
  error: { code: string; kind: string; message: string };
}

/** The termination message, cut to what the kubelet keeps (a failure's message is shortened, never the JSON). */
export function encodeTerminationMessage(outcome: JobResult | JobFailure): string {
  let text = JSON.stringify(outcome);
  if (Buffer.byteLength(text) <= TERMINATION_MESSAGE_MAX || !('error' in outcome)) return text;
  const { code, kind, message } = outcome.error;
  let room = message.length;
  while (Buffer.byteLength(text) > TERMINATION_MESSAGE_MAX && room > 0) {
    room = Math.floor(room * 0.8);
    text = JSON.stringify({ error: { code, kind, message: `${message.slice(0, room)}…` } });
  }
  return text;
}

/** The success a termination message reports; undefined when it is not the builder's. */
export function decodeJobResult(message: string): JobResult | undefined {
  try {
    const parsed = JSON.parse(message) as Partial<JobResult>;
    if (typeof parsed.image === 'string' && typeof parsed.reference === 'string' && typeof parsed.digest === 'string') {
      return { image: parsed.image, digest: parsed.digest, reference: parsed.reference, cached: parsed.cached === true };
    }
  } catch {
    // not the builder's message (the kubelet's fallback to the log tail, for one)
  }
  return undefined;
}

/** The error a termination message reports; undefined when it is not the builder's. */
export function decodeJobFailure(message: string): JobFailure['error'] | undefined {
  try {
    return (JSON.parse(message) as JobFailure).error;
  } catch {
    return undefined;
  }
}
