// How the Engine is told registry credentials: X-Registry-Auth (one credential, for push) and
// X-Registry-Config (a map host → credential, for the base images a build pulls). Both are JSON in
// base64url *with* padding, which is what the daemon's decoder (Go's base64.URLEncoding) expects.
import { DOCKER_HUB, normaliseRegistryHost } from '../image/reference.ts';
import { resolveCredentials, type DockerConfig, type RegistryCredential } from '../registry/credentials.ts';

/** The Engine's AuthConfig. Exactly one of password, identitytoken or registrytoken is set, or none. */
export interface EngineAuth {
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
  serveraddress: string;
}

/** A docker config credential as the Engine takes it: a registry token, an identity token, or username and password. */
export function engineAuth(credential: RegistryCredential, host: string): EngineAuth {
  if (credential.registryToken !== undefined) return { registrytoken: credential.registryToken, serveraddress: host };
  if (credential.identityToken !== undefined) return { username: credential.username, identitytoken: credential.identityToken, serveraddress: host };
  return { username: credential.username, password: credential.password, serveraddress: host };
}

/** The docker config's credential for `host` as the Engine takes it, with its key (for the log); undefined when no entry matches. */
export function engineAuthFor(config: DockerConfig | undefined, host: string): { key: string; auth: EngineAuth } | undefined {
  const credential = resolveCredentials(config, host);
  return credential === undefined ? undefined : { key: credential.key, auth: engineAuth(credential, host) };
}

/** The key the daemon looks a host up by in X-Registry-Config (Docker Hub has a historic one). */
function engineAuthKey(registryHost: string): string {
  return normaliseRegistryHost(registryHost) === DOCKER_HUB ? 'https://index.docker.io/v1/' : registryHost;
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

/** X-Registry-Auth for one push; anonymous pushes still send `{}` because the daemon requires the header. */
export function encodeRegistryAuth(auth: EngineAuth | undefined): string {
  return base64url(auth ?? {});
}

/** X-Registry-Config for a build: every registry its FROM images come from. */
export function encodeRegistryConfig(auths: Record<string, EngineAuth>): string {
  const map: Record<string, EngineAuth> = {};
  for (const [host, auth] of Object.entries(auths)) map[engineAuthKey(host)] = auth;
  return base64url(map);
}
