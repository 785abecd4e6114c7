// The build input's `registry-settings` key. Kept apart from the API client code so that the
// in-cluster commands can read it without loading @kubernetes/client-node.
import { BuilderError } from '../errors.ts';
import type { DockerConfig } from '../registry/credentials.ts';
import { transportFor, type RegistrySettings } from '../registry/transport.ts';
import { TargetError, targetRegistry } from '../target.ts';

/**
 * The `registry-settings` key: JSON of registry host → {tlsVerify, ca, insecure}, the settings that
 * kubeless-config's single `function-registry-tls-verify` cannot express (a CA, plain HTTP, several
 * registries). `where` names the source in errors.
 */
export function parseRegistrySettings(text: string | undefined, where: string): RegistrySettings {
  if (text === undefined || text.trim() === '') return {};
  const fail = (message: string, host?: string): never => {
    throw new BuilderError('E_CONFIG_INVALID', 'user', `registry settings (${where}): ${message}`, { details: { where, ...(host ? { host } : {}) } });
  };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    fail('not JSON; expected {"host:port": {"tlsVerify": false, "ca": "<PEM>", "insecure": true}}');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) fail('must be an object of registry host → settings');
  const settings: RegistrySettings = {};
  for (const [host, entry] of Object.entries(parsed as Record<string, unknown>)) {
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) fail(`"${host}" must be an object`, host);
    const { tlsVerify, ca, insecure, ...rest } = entry as Record<string, unknown>;
    const unknown = Object.keys(rest);
    if (unknown.length > 0) fail(`"${host}" has unknown settings ${unknown.map((k) => `"${k}"`).join(', ')} (known: tlsVerify, ca, insecure)`, host);
    if (tlsVerify !== undefined && typeof tlsVerify !== 'boolean') fail(`"${host}".tlsVerify must be true or false`, host);
    if (insecure !== undefined && typeof insecure !== 'boolean') fail(`"${host}".insecure must be true or false`, host);
    if (ca !== undefined && typeof ca !== 'string') fail(`"${host}".ca must be PEM text`, host);
    settings[host] = {
      ...(tlsVerify !== undefined ? { tlsVerify: tlsVerify as boolean } : {}),
      ...(ca !== undefined ? { ca: ca as string } : {}),
      ...(insecure !== undefined ? { insecure: insecure as boolean } : {}),
    };
  }
  return settings;
}

/**
 * `settings` with certificate verification off for `host` (`function-registry-tls-verify: "false"`).
 * An entry that names the host in another spelling (transportFor folds aliases and schemes) is
 * extended rather than shadowed; its own tlsVerify, when set, wins.
 */
export function withTlsVerifyOff(settings: RegistrySettings, host: string): RegistrySettings {
  const key =
    Object.keys(settings).find((candidate) => {
      const probe = {};
      return transportFor({ [candidate]: probe }, host) === probe;
    }) ?? host;
  return { ...settings, [key]: { tlsVerify: false, ...settings[key] } };
}

/**
 * The settings every registry request of one configuration uses: `registry-settings` with
 * `function-registry-tls-verify` applied to the target registry (the same host for every function).
 * A target that this configuration cannot name is left to fail where a function is built, with its
 * TargetError; until then the settings are used as given.
 */
export function targetRegistrySettings(settings: RegistrySettings, tlsVerify: boolean, target: { registry: string | undefined; dockerConfig: DockerConfig | undefined }): RegistrySettings {
  if (tlsVerify) return settings;
  let host: string;
  try {
    host = targetRegistry(target).host;
  } catch (error) {
    if (error instanceof TargetError) return settings;
    throw error;
  }
  return withTlsVerifyOff(settings, host);
}

/**
 * Registry settings (a config's) with a caller's `extra` over them, host by host: an extra entry
 * adds to the config's (which has function-registry-tls-verify in it) rather than replacing it.
 */
export function withExtraRegistrySettings(settings: RegistrySettings, extra: RegistrySettings | undefined): RegistrySettings {
  if (extra === undefined) return settings;
  const merged: RegistrySettings = { ...settings };
  for (const [host, entry] of Object.entries(extra)) merged[host] = { ...merged[host], ...entry };
  return merged;
}
