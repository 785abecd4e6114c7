// `$(VAR)` references in env values, expanded the way Kubernetes expands container env:
//   $(VAR)   → the value of VAR when VAR is defined, else left exactly as written;
//   $$       → a literal "$" (so "$$(VAR)" is the literal text "$(VAR)");
//   "$(" without a closing ")" and a "$" before any other character stay as written (what follows
//   them is still expanded: "$(a$$" is "$(a$").
// A Dockerfile ENV knows nothing of this syntax, so the builder expands before writing it.

export type VariableLookup = (name: string) => string | undefined;

export function expandVariables(value: string, lookup: VariableLookup | Record<string, string>): string {
  const find: VariableLookup = typeof lookup === 'function'
    ? lookup
    : (name) => (Object.hasOwn(lookup, name) ? lookup[name] : undefined);
  let out = '';
  let i = 0;
  while (i < value.length) {
    const ch = value[i];
    if (ch !== '$' || i + 1 >= value.length) {
      out += ch;
      i += 1;
      continue;
    }
    const next = value[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
    } else if (next === '(') {
      const close = value.indexOf(')', i + 2);
      if (close === -1) {
        // Unterminated: keep "$(" and go on reading after it, as Kubernetes' expansion does (its
        // tryReadVariableName consumes only the "(" then), so a later "$$" still becomes "$".
        out += '$(';
        i += 2;
      } else {
        const name = value.slice(i + 2, close);
        out += find(name) ?? `$(${name})`;
        i = close + 1;
      }
    } else {
      out += '$';
      i += 1;
    }
  }
  return out;
}

/**
 * Expands every value of `env` against `vars`, plus the entries of `env` that come before it
 * (Kubernetes lets a variable refer to the ones defined earlier in the same list).
 */
export function expandEnv(env: Record<string, string> | Iterable<[string, string]>, vars: Record<string, string> = {}): Record<string, string> {
  const known = new Map<string, string>(Object.entries(vars));
  const result: Record<string, string> = {};
  const entries = Symbol.iterator in env ? (env as Iterable<[string, string]>) : Object.entries(env);
  for (const [name, value] of entries) {
    const expanded = expandVariables(value, (ref) => known.get(ref));
    result[name] = expanded;
    known.set(name, expanded);
  }
  return result;
}
