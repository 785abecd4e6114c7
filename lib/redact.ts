// The function's env values (a password, a registry token in NPM_CONFIG_EXTRA) reach the install
// step, and an install command may print them; every line the builder shows passes through here.
// Values shorter than MIN_REDACTED_LENGTH are left alone: "1" or "on" cannot be told from the rest
// of a line, and hiding them would garble every line without hiding a secret.
const REDACTED = '***';
const MIN_REDACTED_LENGTH = 4;

export type Redactor = (text: string) => string;

/** Replaces each of `values` (longest first, so no part of one survives) by ***. */
export function redactor(values: Iterable<string>): Redactor {
  const secrets = redactable(values);
  if (secrets.length === 0) return (text) => text;
  return (text) => replaceSecrets(text, secrets, REDACTED);
}

/** The values worth hiding, longest first. */
export function redactable(values: Iterable<string>): string[] {
  return [...new Set(values)].filter((value) => value.length >= MIN_REDACTED_LENGTH).sort((a, b) => b.length - a.length);
}

/** `text` with each of `secrets` (as redactable() orders them) replaced by `mark`. */
export function replaceSecrets(text: string, secrets: readonly string[], mark: string): string {
  let result = text;
  for (const secret of secrets) if (result.includes(secret)) result = result.split(secret).join(mark);
  return result;
}
