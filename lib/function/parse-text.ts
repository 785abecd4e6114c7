// The documents of a Function's text (YAML, several documents allowed, or JSON), read within
// FUNCTION_INPUT_LIMITS: the size is checked before anything is parsed, the nesting depth and the
// token count while the text is read, YAML aliases as they are expanded. JSON goes through
// JSON.parse after a linear scan for depth, tokens and keys given twice; YAML's double-quoted
// values through decodeDoubleQuoted: yaml reads those one character at a time, at some fifty
// bytes each.
import { randomBytes } from 'node:crypto';
import { CST, Composer, Lexer, LineCounter, Parser, type Document } from 'yaml';
import { decodeDoubleQuoted } from './double-quoted.ts';
import { FunctionInvalidError, FunctionTooLargeError } from './errors.ts';
import { FUNCTION_INPUT_LIMITS, TOO_LARGE_HINT } from './input-limits.ts';

const { maxInputBytes, maxDepth, maxTokens, maxAliases } = FUNCTION_INPUT_LIMITS;

const tooDeep = (): FunctionInvalidError =>
  new FunctionInvalidError(undefined, '(input)', `nests mappings and sequences more than ${maxDepth} deep; a Function needs about 15`);
const tooManyTokens = (): FunctionInvalidError =>
  new FunctionInvalidError(undefined, '(input)', `has more than ${maxTokens} YAML/JSON tokens; a Function is far smaller (${TOO_LARGE_HINT})`);

/** The non-empty documents of the text, as plain values. */
export function parseFunctionText(input: string | Buffer): unknown[] {
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.length;
  if (size > maxInputBytes) throw new FunctionTooLargeError(undefined, 'the Function input', size, maxInputBytes, TOO_LARGE_HINT);
  const text = typeof input === 'string' ? input : input.toString('utf8');
  const json = /^\s*[{[]/.test(text) ? parseJson(text) : undefined;
  if (json !== undefined) return json === null ? [] : [json];
  return parseYaml(text);
}

/** An open object or array of the JSON scan: the keys an object has had, the item an array is at. */
interface JsonFrame {
  keys: Set<string> | undefined;
  /** The key whose value is being read (objects), or the item index (arrays). */
  at: string | number;
  /** The next string of an object is a key: after "{" or ",". */
  expectKey: boolean;
}

/**
 * The value of a JSON text, or undefined when it is not JSON (it may still be YAML flow style).
 * Of two equal keys JSON.parse keeps the last without a word, so a Function edited by hand could
 * build other code than its author reads; YAML refuses them, and so does this scan.
 */
function parseJson(text: string): unknown {
  let tokens = 0;
  const open: JsonFrame[] = [];
  let duplicate: string | undefined;
  for (let index = 0; index < text.length; index += 1) {
    const char = text.charCodeAt(index);
    const top = open[open.length - 1];
    if (char === 0x22) {
      const start = index;
      let escaped = false;
      for (index += 1; index < text.length; index += 1) {
        const inner = text.charCodeAt(index);
        if (inner === 0x5c) {
          escaped = true;
          index += 1; // the next character is escaped
        } else if (inner === 0x22) {
          break;
        }
      }
      tokens += 1;
      if (top?.keys !== undefined && top.expectKey) {
        top.expectKey = false;
        const key = escaped ? decodedKey(text.slice(start, index + 1)) : text.slice(start + 1, index);
        if (key !== undefined && top.keys.has(key) && duplicate === undefined) duplicate = keyPath(open, key);
        if (key !== undefined) top.keys.add(key);
        top.at = key ?? '';
      }
    } else if (char === 0x5b || char === 0x7b) {
      if (open.length >= maxDepth) throw tooDeep();
      open.push(char === 0x7b ? { keys: new Set(), at: '', expectKey: true } : { keys: undefined, at: 0, expectKey: false });
      tokens += 1;
    } else if (char === 0x5d || char === 0x7d) {
      open.pop();
    } else if (char === 0x2c) {
      if (top?.keys !== undefined) top.expectKey = true;
      else if (top !== undefined) top.at = (top.at as number) + 1;
      tokens += 1;
    } else if (char === 0x3a) {
      tokens += 1;
    }
    if (tokens > maxTokens) throw tooManyTokens();
  }
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
  if (duplicate !== undefined) {
    throw new FunctionInvalidError(undefined, duplicate, 'is given twice in one JSON object, and only the last would count; give each key once');
  }
  return value;
}

function decodedKey(quoted: string): string | undefined {
  try {
    return JSON.parse(quoted) as string;
  } catch {
    return undefined;
  }
}

/** Where `key` of the innermost open object is, e.g. `spec.deployment.spec` or `items[0].spec`. */
function keyPath(open: JsonFrame[], key: string): string {
  const part = (name: string | number): string =>
    typeof name === 'number' ? `[${name}]` : /^[A-Za-z_$][\w$-]*$/.test(name) ? `.${name}` : `[${JSON.stringify(name)}]`;
  return [...open.slice(0, -1).map((frame) => part(frame.at)), part(key)].join('').replace(/^\./, '');
}

function parseYaml(text: string): unknown[] {
  const lines = new LineCounter();
  const quoted = new QuotedValues();
  const values: unknown[] = [];
  parseDocuments(text, lines, quoted).forEach((document, index) => {
    const problem = document.errors[0];
    if (problem !== undefined) {
      const { line, col } = lines.linePos(problem.pos[0]);
      throw new FunctionInvalidError(undefined, `document ${index + 1}`, `is not valid YAML or JSON: ${problem.message} at line ${line}, column ${col}`);
    }
    let value: unknown;
    try {
      value = document.toJS({ maxAliasCount: maxAliases });
    } catch (error) {
      // yaml throws a ReferenceError when aliases expand past maxAliasCount (a "billion laughs" bomb).
      throw new FunctionInvalidError(undefined, `document ${index + 1}`, `expands its YAML aliases into too many nodes (a Function needs none; at most ${maxAliases} are followed): ${(error as Error).message}`, { cause: error });
    }
    if (value !== null && value !== undefined) values.push(quoted.restore(value));
  });
  return values;
}

/**
 * Double-quoted values of the syntax tree, decoded here and replaced by a short placeholder that
 * yaml reads instead; restore() puts the decoded strings back into the parsed values. Keys and
 * tagged values (a tag may need the source, e.g. !!binary) stay with yaml, as does anything
 * decodeDoubleQuoted leaves undecided.
 */
class QuotedValues {
  readonly #prefix = `fib-quoted-${randomBytes(8).toString('hex')}-`;
  readonly #values = new Map<string, string>();

  /** The parser's tokens, with the double-quoted values of each document taken out. */
  *taken(tokens: Iterable<CST.Token>): Generator<CST.Token> {
    for (const token of tokens) {
      if (token.type === 'document') this.#take(token);
      yield token;
    }
  }

  #take(document: CST.Document): void {
    CST.visit(document, (item) => {
      const value = item.value;
      if (value?.type !== 'double-quoted-scalar' || value.source.length < 64) return;
      if ([...item.start, ...(item.sep ?? [])].some((part) => part.type === 'tag')) return;
      const decoded = decodeDoubleQuoted(value.source);
      if (decoded === undefined) return;
      const placeholder = `${this.#prefix}${this.#values.size}`;
      this.#values.set(placeholder, decoded);
      value.source = `"${placeholder}"`;
    });
  }

  restore(value: unknown): unknown {
    if (this.#values.size === 0) return value;
    if (typeof value === 'string') return this.#values.get(value) ?? value;
    if (Array.isArray(value)) return value.map((item) => this.restore(item));
    if (typeof value === 'object' && value !== null) {
      return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, this.restore(item)]));
    }
    return value;
  }
}

/**
 * The documents as yaml's parseAllDocuments makes them, with the nesting depth and the token count
 * checked while the text is read: deeply nested or very fine-grained input is refused before its
 * syntax tree grows past a few megabytes.
 */
function parseDocuments(text: string, lines: LineCounter, quoted: QuotedValues): Document.Parsed[] {
  const parser = new Parser(lines.addNewLine);
  let tokens = 0;
  function* checkedTokens() {
    for (const lexeme of new Lexer().lex(text)) {
      if (++tokens > maxTokens) throw tooManyTokens();
      yield* quoted.taken(parser.next(lexeme));
      // The parser's stack holds the document and each open collection: its length is the nesting depth.
      if (parser.stack.length > maxDepth + 2) throw tooDeep();
    }
    yield* quoted.taken(parser.end());
  }
  return Array.from(new Composer().compose(checkedTokens()));
}
