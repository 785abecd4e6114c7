// The registry clients of one build, one per host: the runtime image's digest, the existence check
// and the push to one host share a client bound to the build's credentials, log and signal (tokens
// and auth challenges are shared across clients by lib/registry/auth.ts). Its own module so that the
// pipeline asks for "the client of this host". Nothing to close when the call ends: the connections
// belong to the process-wide pools of lib/registry/transport.ts.
import { RegistryClient, type RegistryLogEvent } from '../registry/client.ts';
import type { DockerConfig } from '../registry/credentials.ts';
import { transportFor, type RegistrySettings } from '../registry/transport.ts';

export interface RegistryClientsOptions {
  dockerConfig: DockerConfig | undefined;
  registries: RegistrySettings | undefined;
  log: (event: RegistryLogEvent) => void;
  signal: AbortSignal;
}

export class RegistryClients {
  readonly #clients = new Map<string, RegistryClient>();
  readonly #options: RegistryClientsOptions;

  constructor(options: RegistryClientsOptions) {
    this.#options = options;
  }

  /** The client of `host`, made on first use. */
  for(host: string): RegistryClient {
    let client = this.#clients.get(host);
    if (!client) {
      const { dockerConfig, registries, log, signal } = this.#options;
      client = new RegistryClient({ registry: host, credentials: dockerConfig, transport: transportFor(registries, host), log, signal });
      this.#clients.set(host, client);
    }
    return client;
  }
}
