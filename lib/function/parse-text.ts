// The documents of a Function's text (YAML, several documents allowed, or JSON), read within
// FUNCTION_INPUT_LIMITS: the size is checked before anything is parsed, the nesting depth and the
// token count while the text is read, YAML aliases as they are expanded. JSON goes through
// JSON.parse after a linear scan for depth and tokens; YAML's double-quoted values through
// decodeDoubleQuoted: yaml reads those one character at a time, at some fifty bytes each.
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

/** The value of a JSON text, or undefined when it is not JSON (it may still be YAML flow style). */
function parseJson(text: string): unknown {
  let depth = 0;
  let tokens = 0;
  let inString = false;
  for (let index = 0; index < text.length; index += 1) {
    const char = text.charCodeAt(index);
    if (inString) {
      if (char === 0x5c) index += 1; // backslash: the next character is escaped
      else if (char === 0x22) inString = false;
      continue;
    }
    if (char === 0x22) {
      inString = true;
      tokens += 1;
    } else if (char === 0x5b || char === 0x7b) {
      if (++depth > maxDepth) throw tooDeep();
      tokens += 1;
    } else if (char === 0x5d || char === 0x7d) {
      depth -= 1;
    } else if (char === 0x2c || char === 0x3a) {
      tokens += 1;
    }
    if (tokens > maxTokens) throw tooManyTokens();
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
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
