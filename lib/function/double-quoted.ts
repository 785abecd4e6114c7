// YAML double-quoted strings, decoded in slices. The yaml library appends such a string to its
// result one character at a time, which costs some fifty bytes of memory per character until the
// string is used: a 4 MiB inline source written double-quoted (as go-yaml and kubectl write strings
// with tabs or trailing spaces) would take hundreds of megabytes. This decoder follows yaml's rules
// (YAML 1.2 escapes, line folding, trimming before line breaks) and joins slices of the source;
// anything it does not recognise is left to yaml, which also reports the errors.

const ESCAPES: Record<string, string> = {
  '0': '\0', a: '\x07', b: '\b', e: '\x1b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v',
  N: '\u0085', _: '\u00a0', L: '\u2028', P: '\u2029', ' ': ' ', '"': '"', '/': '/', '\\': '\\', '\t': '\t',
};
const HEX_LENGTH: Record<string, number> = { x: 2, u: 4, U: 8 };

/** Where decoding has to stop and look: an escape, a line break, blanks before a line break. */
const SPECIAL = /\\|\r?\n|[ \t]+(?=\r?\n)/g;

/** The value of a double-quoted scalar's source (quotes included), or undefined to let yaml decide. */
export function decodeDoubleQuoted(source: string): string | undefined {
  if (source.length < 2 || source[0] !== '"' || source[source.length - 1] !== '"') return undefined;
  const body = source.slice(1, -1);
  const parts: string[] = [];
  let last = 0;
  SPECIAL.lastIndex = 0;
  for (let match = SPECIAL.exec(body); match !== null; match = SPECIAL.exec(body)) {
    parts.push(body.slice(last, match.index));
    let next = match.index + match[0].length;
    if (match[0] === '\\') {
      const code = body[match.index + 1] ?? '';
      next = match.index + 2;
      if (ESCAPES[code] !== undefined) {
        parts.push(ESCAPES[code]);
      } else if (code === '\n' || (code === '\r' && body[match.index + 2] === '\n')) {
        // An escaped line break joins the lines without a space; the next line's indent goes.
        if (code === '\r') next += 1;
        while (body[next] === ' ' || body[next] === '\t') next += 1;
      } else if (HEX_LENGTH[code] !== undefined) {
        const length = HEX_LENGTH[code];
        const hex = body.slice(next, next + length);
        if (hex.length !== length || !/^[0-9a-fA-F]+$/.test(hex)) return undefined;
        const point = parseInt(hex, 16);
        if (point > 0x10ffff) return undefined;
        parts.push(String.fromCodePoint(point));
        next += length;
      } else {
        return undefined;
      }
    } else if (match[0].endsWith('\n')) {
      // A line break folds to a space; n + 1 breaks (blank lines between) to n newlines. The blanks
      // that follow, and a CR that ends a CRLF, go with it.
      let newlines = '';
      while (next < body.length) {
        const char = body[next];
        if (char === '\r' && body[next + 1] !== '\n') break;
        if (char !== ' ' && char !== '\t' && char !== '\n' && char !== '\r') break;
        if (char === '\n') newlines += '\n';
        next += 1;
      }
      parts.push(newlines === '' ? ' ' : newlines);
    }
    // Otherwise blanks before a line break: dropped.
    last = next;
    SPECIAL.lastIndex = next;
  }
  parts.push(body.slice(last));
  return parts.join('');
}
