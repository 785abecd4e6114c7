// Pins a runtime image given by tag to the digest its registry serves for it now.
import { RegistryClient } from '../registry/client.ts';
import type { DockerConfig } from '../registry/credentials.ts';
import { transportFor, type RegistrySettings } from '../registry/transport.ts';
import { parseReference } from './reference.ts';
import type { ImageDigestResolver } from './plan.ts';

export interface DigestResolverOptions {
  dockerConfig?: DockerConfig | undefined;
  registries?: RegistrySettings | undefined;
  platform?: string;
}

export function registryDigestResolver(options: DigestResolverOptions = {}): ImageDigestResolver {
  const clients = new Map<string, RegistryClient>();
  return async (image: string): Promise<string> => {
    const reference = parseReference(image);
    if (reference.digest !== undefined) return `${reference.name}@${reference.digest}`;
    let client = clients.get(reference.registry);
    if (client === undefined) {
      client = new RegistryClient({
        registry: reference.registry,
        credentials: options.dockerConfig,
        transport: transportFor(options.registries, reference.registry),
      });
      clients.set(reference.registry, client);
    }
    const digest = await client.resolveDigest(reference.repository, reference.tag ?? 'latest', options.platform ?? 'linux/amd64');
    return `${reference.name}@${digest}`;
  };
}
