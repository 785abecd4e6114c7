import { Lexer, Parser, Composer } from 'yaml';
const MB = 1024 * 1024;
const body = 'x'.repeat(3.9 * MB);
const text = `a: ${JSON.stringify(body)}\n`;
const r = () => (process.resourceUsage().maxRSS / 1024).toFixed(0);
console.log('start', r());
const lexemes = Array.from(new Lexer().lex(text)); console.log('lexed', r(), lexemes.length);
const tokens = Array.from(new Parser().parse(text)); console.log('parsed', r());
const docs = Array.from(new Composer().compose(tokens)); console.log('composed', r());
