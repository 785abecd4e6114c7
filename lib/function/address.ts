// Which network addresses a `url` source may be fetched from. A build runs inside the cluster, so
// a Function's URL (or a redirect it answers with) could otherwise read the cloud's metadata
// endpoint, the node's own services or anything on the pod network, and bake the answer into a
// pushed image. Only public unicast addresses are allowed unless the caller allows private ones.
import { BlockList, isIP } from 'node:net';

/** `true`: every address; a list: these addresses or CIDR ranges as well as public ones. */
export type PrivateAddressAllowance = boolean | string[];

const RANGES: [string, number, 'ipv4' | 'ipv6', string][] = [
  ['0.0.0.0', 8, 'ipv4', 'unspecified ("this network")'],
  ['10.0.0.0', 8, 'ipv4', 'private (RFC 1918)'],
  ['100.64.0.0', 10, 'ipv4', 'shared carrier-grade NAT (RFC 6598)'],
  ['127.0.0.0', 8, 'ipv4', 'loopback'],
  ['169.254.0.0', 16, 'ipv4', 'link-local, where cloud metadata endpoints live'],
  ['172.16.0.0', 12, 'ipv4', 'private (RFC 1918)'],
  ['192.0.0.0', 24, 'ipv4', 'IETF protocol assignment'],
  ['192.0.2.0', 24, 'ipv4', 'documentation'],
  ['192.168.0.0', 16, 'ipv4', 'private (RFC 1918)'],
  ['198.18.0.0', 15, 'ipv4', 'benchmarking'],
  ['198.51.100.0', 24, 'ipv4', 'documentation'],
  ['203.0.113.0', 24, 'ipv4', 'documentation'],
  ['224.0.0.0', 4, 'ipv4', 'multicast'],
  ['240.0.0.0', 4, 'ipv4', 'reserved'],
  ['::', 128, 'ipv6', 'unspecified'],
  ['::1', 128, 'ipv6', 'loopback'],
  ['::', 96, 'ipv6', 'IPv4-compatible (deprecated)'],
  ['100::', 64, 'ipv6', 'discard-only'],
  ['2001:db8::', 32, 'ipv6', 'documentation'],
  ['fc00::', 7, 'ipv6', 'unique local (private)'],
  ['fe80::', 10, 'ipv6', 'link-local'],
  ['fec0::', 10, 'ipv6', 'site-local (deprecated)'],
  ['ff00::', 8, 'ipv6', 'multicast'],
];

/** One BlockList per reason, checked in order; BlockList also matches IPv4-mapped IPv6 against the IPv4 rules. */
const CLASSES = RANGES.map(([network, prefix, family, reason]) => {
  const list = new BlockList();
  list.addSubnet(network, prefix, family);
  return { list, reason };
});

/** IPv6 prefixes that carry an IPv4 address in their last 32 bits: NAT64 and 6to4 (bits 16-47). */
function embeddedIpv4(address: string): string | undefined {
  const groups = expandIpv6(address);
  if (groups === undefined) return undefined;
  const quad = (high: number, low: number): string => [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
  if (groups[0] === 0x64 && groups[1] === 0xff9b && groups.slice(2, 6).every((group) => group === 0)) return quad(groups[6]!, groups[7]!);
  if (groups[0] === 0x2002) return quad(groups[1]!, groups[2]!);
  return undefined;
}

function expandIpv6(address: string): number[] | undefined {
  if (isIP(address) !== 6) return undefined;
  let text = address;
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  return [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/** Why the address is not a public unicast address, or undefined when it is one. */
function nonPublicReason(address: string): string | undefined {
  const family = isIP(address);
  if (family === 0) return 'not an IP address';
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const match = CLASSES.find(({ list }) => list.check(address, type));
  if (match !== undefined) return match.reason;
  const inner = embeddedIpv4(address);
  const innerReason = inner === undefined ? undefined : nonPublicReason(inner);
  return innerReason === undefined ? undefined : `${innerReason}, inside a NAT64/6to4 address`;
}

/** An allowance ready to check addresses against: every address (`true`), public ones only (`false`), or these too. */
export type AllowedAddresses = boolean | BlockList;

// By array: a caller passes the list of its configuration to every download, so each list is read once.
const allowedLists = new WeakMap<string[], BlockList | string>();

/** The allowance as AllowedAddresses, or the problem with its list as a string. */
export function allowedAddresses(allowance: PrivateAddressAllowance | undefined): AllowedAddresses | string {
  if (!Array.isArray(allowance)) return allowance === true;
  let allowed = allowedLists.get(allowance);
  if (allowed === undefined) {
    allowed = rangeList(allowance);
    allowedLists.set(allowance, allowed);
  }
  return allowed;
}

function rangeList(ranges: string[]): BlockList | string {
  const list = new BlockList();
  for (const range of ranges) {
    const parsed = parseRange(range);
    if (parsed === undefined) return rangeProblem(range);
    list.addSubnet(parsed.network, parsed.prefix, parsed.family);
  }
  return list;
}

const rangeProblem = (range: string): string =>
  `must be "true", "false" or a comma-separated list of IP addresses and CIDR ranges; ${JSON.stringify(range)} is none of these`;

/** undefined when the address may be fetched from, else the reason it may not. */
export function refusedAddressReason(address: string, allowed: AllowedAddresses): string | undefined {
  const reason = nonPublicReason(address);
  if (reason === undefined || allowed === true) return undefined;
  if (allowed !== false && allowed.check(address, isIP(address) === 4 ? 'ipv4' : 'ipv6')) return undefined;
  return reason;
}

function parseRange(range: string): { network: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [network = '', prefixText, extra] = range.trim().split('/');
  const family = isIP(network);
  if (family === 0 || extra !== undefined) return undefined;
  const max = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (prefixText !== undefined && !/^\d+$/.test(prefixText))) return undefined;
  return { network, prefix, family: family === 4 ? 'ipv4' : 'ipv6' };
}

/**
 * The setting as text (kubeless-config, the Job's environment): "true", "false"/"" or a
 * comma-separated list of addresses and CIDR ranges. Returns the problem as a string when it is none of these.
 */
export function parsePrivateAddressAllowance(text: string | undefined): PrivateAddressAllowance | string {
  const value = (text ?? '').trim();
  if (value === '' || value.toLowerCase() === 'false') return false;
  if (value.toLowerCase() === 'true') return true;
  const ranges = value.split(',').map((part) => part.trim()).filter((part) => part !== '');
  const bad = ranges.find((range) => parseRange(range) === undefined);
  return bad === undefined ? ranges : rangeProblem(bad);
}

/** The setting as the text parsePrivateAddressAllowance reads, for the build Job's ConfigMap. */
export function formatPrivateAddressAllowance(allowance: PrivateAddressAllowance): string {
  return allowance === true ? 'true' : allowance === false ? 'false' : allowance.join(',');
}
