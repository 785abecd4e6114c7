// GET /images/{name}/json bound to a signal. dockerode's image.inspect() takes no abortSignal, so the
// endpoint is dialled directly: a frozen daemon cannot hold a call past its limit.
import type Dockerode from 'dockerode';
import { DockerUnavailableError } from './errors.ts';

export interface InspectedImage {
  Id?: string;
  Config?: { User?: string };
}

/**
 * The image's inspect data, undefined when the daemon has no such image. Once `signal` fired, what
 * the cancelled request threw; any other failure (a 500, a dropped socket) is DockerUnavailableError
 * naming the image, so that a caller never hands on dockerode's untyped error.
 */
export async function inspectImage(docker: Dockerode, name: string, signal: AbortSignal | undefined): Promise<InspectedImage | undefined> {
  const modem = docker.modem as unknown as { dial(options: object, callback: (error: unknown, data: unknown) => void): void };
  try {
    return await new Promise((resolve, reject) => {
      modem.dial({ path: `/images/${name}/json`, method: 'GET', abortSignal: signal, statusCodes: { 200: true, 404: 'no such image', 500: 'server error' } }, (error, data) => {
        if (!error) resolve(data as InspectedImage);
        else if ((error as { statusCode?: number }).statusCode === 404) resolve(undefined);
        else reject(error);
      });
    });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new DockerUnavailableError(`the Docker Engine could not look up the image ${name}: ${(error as Error).message}`, { cause: error, details: { image: name } });
  }
}
