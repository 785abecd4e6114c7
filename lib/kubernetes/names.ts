// Kubernetes names and label values made from Function names.
//
// A Function name is a DNS-1123 subdomain (up to 253 characters, dots allowed), but a Job name must
// also fit in the `job-name` label of its pods: a DNS-1123 label of at most 63 characters. Label
// values have their own rules (63 characters, alphanumeric at both ends). When a name has to be
// shortened or rewritten, a hash of the original is appended so that two different Functions never
// map to the same Job or label value.
import { createHash } from 'node:crypto';

export const DNS1123_LABEL_MAX = 63;
const LABEL_VALUE_MAX = 63;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
/** Characters of the tag in a Job name, as Kubeless named its build Jobs. */
const JOB_NAME_TAG_LENGTH = 10;
const HASH_LENGTH = 8;

export function isDns1123Label(value: string): boolean {
  return value.length <= DNS1123_LABEL_MAX && DNS1123_LABEL.test(value);
}

function isLabelValue(value: string): boolean {
  return value.length <= LABEL_VALUE_MAX && LABEL_VALUE.test(value);
}

function shortHash(value: string): string {
  return createHash('sha256').update(value).digest('hex').slice(0, HASH_LENGTH);
}

/** `value` reduced to DNS-1123 label characters: lower case, runs of anything else become one "-". */
function labelCharacters(value: string): string {
  return value
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/**
 * A DNS-1123 label `<prefix><name><suffix>` of at most 63 characters. `name` is kept as is when it is
 * already made of label characters and fits; otherwise it is cleaned, cut, and followed by a hash of
 * the original so that distinct names stay distinct.
 */
function dns1123Label(prefix: string, name: string, suffix = ''): string {
  const room = DNS1123_LABEL_MAX - prefix.length - suffix.length;
  const clean = labelCharacters(name);
  if (clean === name && clean.length > 0 && clean.length <= room) return `${prefix}${clean}${suffix}`;
  const hash = shortHash(name);
  const kept = clean.slice(0, Math.max(0, room - HASH_LENGTH - 1)).replace(/-+$/, '');
  return `${prefix}${kept === '' ? '' : `${kept}-`}${hash}${suffix}`;
}

/** The build Job's name, `build-<function>-<tag[0:10]>`, a DNS-1123 label for any function name. */
export function buildJobName(functionName: string, tag: string): string {
  const tagPart = tag.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, JOB_NAME_TAG_LENGTH);
  return dns1123Label('build-', functionName, tagPart === '' ? '' : `-${tagPart}`);
}

/** A valid label value standing for `value`: itself when it is one, else a cut, cleaned form plus a hash. */
export function labelValue(value: string): string {
  if (isLabelValue(value)) return value;
  const hash = shortHash(value);
  const clean = value
    .replace(/[^A-Za-z0-9_.-]+/g, '-')
    .slice(0, LABEL_VALUE_MAX - HASH_LENGTH - 1)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  return clean === '' ? hash : `${clean}-${hash}`;
}
