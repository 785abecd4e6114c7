// Pins a runtime image given by tag to the digest its registry serves for it now.
import { RegistryClient, type RegistryLogEvent } from '../registry/client.ts';
import type { DockerConfig } from '../registry/credentials.ts';
import { transportFor, type RegistrySettings } from '../registry/transport.ts';
import { parseReference } from './reference.ts';
import { DEFAULT_PLATFORM, type ImageDigestResolver } from './plan.ts';

export interface DigestResolverOptions {
  dockerConfig?: DockerConfig | undefined;
  registries?: RegistrySettings | undefined;
  platform?: string;
  /** Receives the registry clients' events: the docker config key used, config warnings, retries. */
  log?: ((event: RegistryLogEvent) => void) | undefined;
  /** Aborts the registry requests of a resolution in flight. */
  signal?: AbortSignal | undefined;
}

export function registryDigestResolver(options: DigestResolverOptions = {}): ImageDigestResolver {
  return async (image: string): Promise<string> => {
    const reference = parseReference(image);
    if (reference.digest !== undefined) return `${reference.name}@${reference.digest}`;
    // A client per image: a plan pins only a few, and the connections are pooled across clients.
    const client = new RegistryClient({
      registry: reference.registry,
      credentials: options.dockerConfig,
      transport: transportFor(options.registries, reference.registry),
      log: options.log,
      signal: options.signal,
    });
    const digest = await client.resolveDigest(reference.repository, reference.tag ?? 'latest', options.platform ?? DEFAULT_PLATFORM);
    return `${reference.name}@${digest}`;
  };
}
