import fc from 'fast-check';
import { FhirError } from '../errors';
import { JsonLimits, readJson } from '../json/jsonReader';
import { assertOwnRefusal, assertWithinBound, isClientError, PropertyFailure, PropertySettings, run } from './bounds';

/**
 * readJson (src/json/jsonReader.ts) against JSON.parse, the reference:
 * - on every text JSON.parse accepts that has no duplicate member name, no refused name
 *   or string and stays within the limits, readJson gives the same value (and numbers
 *   it notes as decimals are numbers of that value, written otherwise);
 * - a text with a member name twice in one object is refused;
 * - every other refusal has its reason (a limit for 413, a duplicate, a refused name or
 *   string for 400), and a text JSON.parse refuses is refused;
 * - nothing is thrown but BadRequest and PayloadTooLarge, within the time bound.
 */

export interface JsonInput {
  text: string;
  limits: JsonLimits;
}

const SPACES = ['', ' ', '\t', '\n', '\r\n  ', '  '];

/** Values with strings of any code points, including escapes JSON.stringify writes (\u0000, lone surrogates). */
const jsonValue = fc.jsonValue({ stringUnit: 'binary', maxDepth: 6, depthSize: 'small' });

const spacedText = fc.tuple(jsonValue, fc.constantFrom(...SPACES)).map(([v, space]) => JSON.stringify(v, null, space));

/** An object written with one of its members twice, somewhere in a larger value. */
const duplicateText = fc
  .tuple(fc.dictionary(fc.string({ maxLength: 4 }), jsonValue, { minKeys: 1, maxKeys: 4 }), fc.nat(), fc.nat(), jsonValue, fc.constantFrom('$', '[$]', '{"a":$}', '[1,{"b":[$]}]'))
  .map(([object, which, where, again, wrapper]) => {
    const members = Object.entries(object).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`);
    const keys = Object.keys(object);
    const key = keys[which % keys.length];
    members.splice(where % (members.length + 1), 0, `${JSON.stringify(key)}:${JSON.stringify(again)}`);
    return wrapper.replace('$', `{${members.join(',')}}`);
  });

/** Pieces of JSON and of what is almost JSON, joined at random. */
const TOKENS = [
  '{', '}', '[', ']', ',', ':', ' ', '\n', '\t', '\r', '\u00a0', '\u000b', '\f', '\ufeff', '\u2028',
  '"a"', '"__proto__"', '"constructor"', '"prototype"', '"\\u005f_proto__"', '""', '"\\"', '"\\\\"', '"\\\\\\""', '"\\u0000"', '"\\ud800"', '"\\udc00"', '"\\ud83d\\ude00"',
  '"\ud800"', '"\u0000"', '"\u001f"', '"\\x41"', '"\\u12"', '"\\/"', '"\\b\\f\\n\\r\\t"', '"',
  '0', '-0', '01', '1.', '.5', '1e', '1e400', '-1e-400', '1E+2', '72.10', '-', '+1', '0x10', 'NaN', 'Infinity', '9007199254740993',
  'true', 'false', 'null', 'tru', 'nul', 'True', 'undefined',
];
const tokenSoup = fc.array(fc.constantFrom(...TOKENS), { maxLength: 40 }).map((t) => t.join(''));

/** A valid text, then changed: a token inserted, a piece dropped or repeated. */
const mutatedText = fc
  .tuple(spacedText, fc.array(fc.tuple(fc.nat(), fc.nat({ max: 8 }), fc.constantFrom(...TOKENS), fc.constantFrom('insert', 'drop', 'repeat')), { minLength: 1, maxLength: 3 }))
  .map(([text, changes]) => {
    let t = text;
    for (const [at, length, token, how] of changes) {
      const i = at % (t.length + 1);
      if (how === 'insert') t = t.slice(0, i) + token + t.slice(i);
      else if (how === 'drop') t = t.slice(0, i) + t.slice(i + length);
      else t = t.slice(0, i) + t.slice(i, i + length) + t.slice(i);
    }
    return t;
  });

/** Deep nesting, wide arrays: what the limits are for. */
const largeText = fc.oneof(
  fc.tuple(fc.integer({ min: 1, max: 3000 }), fc.constantFrom('[', '{"a":', '[{"b":'), fc.boolean()).map(([n, open, closed]) => {
    const close = open === '[' ? ']' : open === '{"a":' ? '}' : '}]';
    return open.repeat(n) + '1' + (closed ? close.repeat(n) : '');
  }),
  fc.tuple(fc.integer({ min: 0, max: 300 }), fc.constantFrom('0', '{}', '[]', '"x"', '[1,2]')).map(([n, item]) => `[${Array(n).fill(item).join(',')}]`),
);

const limits = fc.record({ maxDepth: fc.integer({ min: 1, max: 12 }), maxNodes: fc.integer({ min: 1, max: 400 }), maxArrayLength: fc.integer({ min: 0, max: 50 }) });
const generous: JsonLimits = { maxDepth: 100, maxNodes: 100_000, maxArrayLength: 10_000 };

export const jsonInput: fc.Arbitrary<JsonInput> = fc.record({
  text: fc.tuple(fc.oneof({ weight: 3, arbitrary: spacedText }, duplicateText, { weight: 2, arbitrary: tokenSoup }, { weight: 3, arbitrary: mutatedText }, largeText), fc.constantFrom('', '', '', '\ufeff', ' ')).map(([t, lead]) => lead + t),
  limits: fc.oneof(limits, fc.constant(generous)),
});

// ---------------------------------------------------------------- the reference

interface Facts {
  value: unknown;
  duplicate: boolean;
  refusedName: boolean;
  unstorable: boolean;
  depth: number;
  nodes: number;
  longestArray: number;
}

const REFUSED_NAMES = new Set(['__proto__', 'constructor', 'prototype']);
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Whether a text JSON.parse accepted names a member twice in one object: a token scan, independent of the reader. */
export function hasDuplicateName(text: string): boolean {
  const token = /[ \t\n\r]*(?:("(?:[^"\\]|\\.)*")|([{}[\],:])|([^ \t\n\r{}[\],:"]+))/y;
  const open: (Set<string> | null)[] = [];
  let previousString: string | undefined;
  for (let m = token.exec(text); m && m[0] !== ''; m = token.exec(text)) {
    const [, string, punct] = m;
    if (punct === '{') open.push(new Set());
    else if (punct === '[') open.push(null);
    else if (punct === '}' || punct === ']') open.pop();
    else if (punct === ':' && previousString !== undefined) {
      const names = open[open.length - 1];
      const name = JSON.parse(previousString) as string;
      if (names?.has(name)) return true;
      names?.add(name);
    }
    previousString = string;
  }
  return false;
}

/** What JSON.parse makes of the text, and what about it the reader may refuse; undefined when JSON.parse refuses it. */
function reference(text: string): Facts | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const facts: Facts = { value, duplicate: hasDuplicateName(text), refusedName: false, unstorable: false, depth: 0, nodes: 0, longestArray: 0 };
  const pending: [unknown, number][] = [[value, 0]];
  for (let item = pending.pop(); item; item = pending.pop()) {
    const [v, level] = item;
    facts.nodes++;
    if (typeof v === 'string' && UNSTORABLE.test(v)) facts.unstorable = true;
    if (!v || typeof v !== 'object') continue;
    facts.depth = Math.max(facts.depth, level + 1);
    if (Array.isArray(v)) {
      facts.longestArray = Math.max(facts.longestArray, v.length);
      for (const x of v) pending.push([x, level + 1]);
    } else {
      for (const [k, x] of Object.entries(v)) {
        if (REFUSED_NAMES.has(k)) facts.refusedName = true;
        if (UNSTORABLE.test(k)) facts.unstorable = true;
        pending.push([x, level + 1]);
      }
    }
  }
  return facts;
}

/** Same JSON value; numbers compared with Object.is (-0 is kept). */
function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a !== typeof b) return false;
  if (typeof a === 'number') return Object.is(a, b);
  if (!a || !b || typeof a !== 'object' || typeof b !== 'object') return a === b;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** The value at a pointer as the reader writes them (a bare top-level number is at "/", as in src/json/decimals.ts). */
function atPointer(value: unknown, pointer: string): unknown {
  if (pointer === '/' && typeof value === 'number') return value;
  let at = value;
  for (const step of pointer.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))) {
    if (!at || typeof at !== 'object' || !Object.hasOwn(at, step)) return undefined;
    at = (at as Record<string, unknown>)[step];
  }
  return at;
}

/** How the runs ended: accepted by both, refused by both, refused by the reader alone (with its reason). */
export const jsonStats = { accepted: 0, refusedByBoth: 0, refusedByReader: 0 };

export function checkJson(input: JsonInput, settings: PropertySettings): void {
  // the reader is given text decoded from UTF-8 (src/http/app.ts, a fatal decoder): never a lone surrogate as such
  const text = Buffer.from(input.text, 'utf8').toString('utf8');
  const { limits } = input;
  const outcome = run(() => readJson(text, limits));
  assertWithinBound(outcome, settings.boundMs, 'readJson');
  assertOwnRefusal(outcome, isClientError, 'readJson');
  const facts = reference(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  if (outcome.ok) jsonStats.accepted++;
  else if (facts) jsonStats.refusedByReader++;
  else jsonStats.refusedByBoth++;
  if (!facts) {
    if (outcome.ok) throw new PropertyFailure('readJson accepted a text JSON.parse refuses');
    return;
  }
  const overLimit = facts.depth > limits.maxDepth || facts.nodes > limits.maxNodes || facts.longestArray > limits.maxArrayLength;
  const refusable = facts.duplicate || facts.refusedName || facts.unstorable;
  if (outcome.ok) {
    if (facts.duplicate) throw new PropertyFailure('readJson accepted a member name given twice in one object');
    if (refusable || overLimit) throw new PropertyFailure(`readJson accepted what it must refuse (${JSON.stringify({ ...facts, value: undefined })})`);
    if (!sameValue(outcome.value.value, facts.value)) throw new PropertyFailure('readJson and JSON.parse give different values');
    for (const [pointer, literal] of outcome.value.decimals ?? []) {
      const n = atPointer(outcome.value.value, pointer);
      if (typeof n !== 'number' || !Object.is(Number(literal), n) || String(n) === literal) {
        throw new PropertyFailure(`decimal ${pointer} = ${literal} does not name a number written otherwise (found ${String(n)})`);
      }
    }
    return;
  }
  const status = (outcome.error as FhirError).status;
  // a duplicate may be refused first or after a limit met in the member JSON.parse dropped
  if (facts.duplicate) return;
  if (status === 413 && !overLimit) throw new PropertyFailure(`readJson refused a text within its limits as too large: ${(outcome.error as Error).message}`);
  if (status === 400 && !refusable) throw new PropertyFailure(`readJson refused a text JSON.parse accepts: ${(outcome.error as Error).message}`);
  if (status !== 400 && status !== 413) throw new PropertyFailure(`readJson refused with status ${status}`);
}

export const jsonProperty = (settings: PropertySettings) => fc.property(jsonInput, (input) => checkJson(input, settings));

/** Loads what the first call would (nothing here), so that the time bound measures the parser. */
export function warmJson(): void {
  readJson('{"a":[1]}', generous);
}
