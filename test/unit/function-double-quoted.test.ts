// YAML double-quoted strings are decoded by lib/function/double-quoted.ts instead of yaml (which
// builds them one character at a time): the values must be exactly yaml's, for every escape, line
// fold and blank that yaml's own writer produces, and for the forms other writers (go-yaml) use.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parse, stringify } from 'yaml';
import { decodeDoubleQuoted } from '../../lib/function/double-quoted.ts';
import { parseFunction } from '../../lib/function/parse.ts';

const PIECES = ['a', 'b', ' ', '  ', '\t', '\n', '\n\n', '\r\n', '"', '\\', 'é', '😀', '\x00', '\x07', '\x1b', '\x7f', '\u0085', '\u2028', '\u00a0', "'", '#', ': ', '- ', ' \n', '\t\n', '\r', 'x'.repeat(30)];

/** A small deterministic generator (mulberry32), so a failure names a case that can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const yamlValue = (source: string): unknown => parse(`v: ${source}\n`).v;

test('every string yaml writes double-quoted, at any line width, decodes to what yaml reads', () => {
  const next = random(12);
  let decided = 0;
  for (let round = 0; round < 4000; round += 1) {
    const value = Array.from({ length: Math.floor(next() * 40) }, () => PIECES[Math.floor(next() * PIECES.length)]).join('');
    for (const lineWidth of [0, 20, 40, 80]) {
      const text = stringify({ v: value }, { defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN', lineWidth, minContentWidth: 0 });
      const source = text.slice(text.indexOf('"'), text.lastIndexOf('"') + 1);
      const decoded = decodeDoubleQuoted(source);
      if (decoded === undefined) continue;
      decided += 1;
      // yaml's own reading, not `value`: its writer does not round-trip every string.
      assert.is(decoded, yamlValue(source), `round ${round}, width ${lineWidth}: ${JSON.stringify(source)}`);
    }
  }
  assert.ok(decided > 15_000, `decided ${decided}`);
});

test('hand-written forms: escaped line breaks, blank lines, trailing blanks, CRLF, 8-digit escapes; unknown escapes are left to yaml', () => {
  for (const source of ['"a\\\n   b"', '"a  \n  b"', '"a\n\n\n  b"', '"a \\ b"', '"\\x41\\u00e9\\U0001F600"', '"tab\\\tx"', '"a\r\n  b"', '"a \r\n b"', '"x\\\r\n  y"', '"a\rb"', '"a \rb"', '"  lead"', '"trail  "', '"a\n \t\n  b"', '"\\N\\_\\L\\P\\/\\e"']) {
    assert.is(decodeDoubleQuoted(source), yamlValue(source), JSON.stringify(source));
  }
  for (const source of ['"a\\qb"', '"\\x4"', '"\\U00110000"', '"open']) assert.is(decodeDoubleQuoted(source), undefined, source);
});

test('a Function with long double-quoted values, folded over lines, parses to the same values as yaml reads', () => {
  const code = `module.exports = {\n\thello: (event) => "hi " + event.data,   \n};\n`.repeat(200);
  const fn = {
    apiVersion: 'kubeless.io/v1beta1',
    kind: 'Function',
    metadata: { name: 'quoted', namespace: 'default' },
    spec: { handler: 'handler.hello', runtime: 'nodejs14', function: code, deps: '{"dependencies": {"left-pad": "1.3.0"}}  '.repeat(3), timeout: '180' },
  };
  const text = stringify(fn, { defaultStringType: 'QUOTE_DOUBLE', defaultKeyType: 'PLAIN', lineWidth: 60 });
  assert.ok(text.split('\n').length > 100, 'folded over many lines');
  const expected = parse(text) as { spec: { function: string; deps: string } };
  const spec = parseFunction(text);
  assert.is(spec.function, expected.spec.function);
  assert.is(spec.deps, expected.spec.deps);
  assert.is(spec.handler.function, 'hello');
});

test.run();
