import fc from 'fast-check';
import { FhirError } from '../errors';
import { decimalTexts } from './decimals';
import { JsonLimits, readJson } from './jsonReader';

const LIMITS: JsonLimits = { maxDepth: 100, maxNodes: 100_000, maxArrayLength: 10_000 };

/** JSON text holding a name or a string the reader refuses by design. */
const REFUSED = /"(?:__proto__|constructor|prototype)"\s*:|\\u0000|\\ud[89a-f]/i;

/** Status and diagnostics of the refusal, or 'ok'. */
function outcome(text: string, limits: JsonLimits = LIMITS): string {
  try {
    readJson(text, limits);
    return 'ok';
  } catch (e) {
    if (!(e instanceof FhirError)) throw e;
    return `${e.status} ${e.issues[0].diagnostics}`;
  }
}

describe('readJson', () => {
  it('reads what JSON.parse reads, and refuses what it refuses', () => {
    // any JSON text made from any value, spaced or not
    fc.assert(
      fc.property(fc.json({ depthSize: 'medium' }), fc.boolean(), (text, spaced) => {
        const t = spaced ? JSON.stringify(JSON.parse(text), null, '\t ') : text;
        let expected: unknown;
        try {
          expected = JSON.parse(t);
        } catch {
          expected = undefined;
        }
        // a value holding a refused name or string is not compared: its refusal has its own test
        if (REFUSED.test(t)) return;
        expect(readJson(t, LIMITS).value).toEqual(expected);
      }),
      { numRuns: 500 },
    );
    // any text at all: either both accept with the same value, or both refuse
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: fc.constantFrom(...'{}[]":,0123456789.-+eE \\tnulrfaseu\n') })), (t) => {
        let expected: unknown = undefined;
        let parses = true;
        try {
          expected = JSON.parse(t);
        } catch {
          parses = false;
        }
        if (parses && /__proto__|constructor|prototype|\\u/.test(t)) return;
        if (parses && /twice in the same object/.test(outcome(t))) return;
        if (parses) expect(readJson(t, LIMITS).value).toEqual(expected);
        else expect(outcome(t)).toMatch(/^400 The body is not valid JSON/);
      }),
      { numRuns: 3000 },
    );
  });

  it.each([
    ['an empty text', ''],
    ['a trailing comma in an array', '[1,]'],
    ['a trailing comma in an object', '{"a":1,}'],
    ['a leading zero', '{"a":01}'],
    ['a bare minus', '[-]'],
    ['a fraction without digits', '[1.]'],
    ['a raw newline in a string', '["a\nb"]'],
    ['a raw tab in a string', '["a\tb"]'],
    ['an unknown escape', '["a\\xb"]'],
    ['a short unicode escape', '["\\u12"]'],
    ['an unterminated string', '["abc\\"]'],
    ['single quotes', "{'a':1}"],
    ['a missing colon', '{"a" 1}'],
    ['two values', '{} {}'],
    ['NaN', '[NaN]'],
    ['an unclosed object', '{"a":{"b":1}'],
    ['a word after true', '[truex]'],
  ])('refuses %s as invalid JSON with 400', (_name, text) => {
    expect(outcome(text)).toMatch(/^400 The body is not valid JSON: .* at position \d+$/);
  });

  it('accepts a UTF-8 byte order mark before the text, and escaped characters of every kind', () => {
    expect(readJson('\ufeff{"a":1}', LIMITS).value).toEqual({ a: 1 });
    expect(readJson('["\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00", "a\\\\"]', LIMITS).value).toEqual(['"\\/\b\f\n\r\té😀', 'a\\']);
    expect(readJson(' \t\r\n{ "a" : [ true , false , null , -1.5e-3 ] } \n', LIMITS).value).toEqual({ a: [true, false, null, -0.0015] });
  });

  it('refuses a member name given twice in one object, wherever the object is and however the name is written', () => {
    expect(outcome('{"resourceType":"Patient","gender":"male","gender":"female"}')).toBe(
      '400 The body has the member "gender" twice in the same object (at /gender, position 42): each name may appear once',
    );
    expect(outcome('{"entry":[{"resource":{"a":1,"b":2,"\\u0061":3}}]}')).toMatch(/^400 The body has the member "a" twice .*at \/entry\/0\/resource\/a/);
    // the same name in different objects is no duplicate
    expect(readJson('[{"a":1},{"a":2}]', LIMITS).value).toEqual([{ a: 1 }, { a: 2 }]);
  });

  it.each(['__proto__', 'constructor', 'prototype'])('refuses a member named %s anywhere with 400', (name) => {
    expect(outcome(`{"${name}":{"polluted":true}}`)).toBe(`400 The body has a member named "${name}", which no FHIR element has (at /${name})`);
    expect(outcome(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","name":[{"${name}":{}}]}}]}`)).toMatch(
      new RegExp(`^400 .*"${name}".*at /entry/0/resource/name/0/${name}`),
    );
    // written with escapes, it is the same name
    const escaped = [...name].map((ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
    expect(outcome(`{"${escaped}":1}`)).toMatch(/^400 The body has a member named/);
    // as a value it is only text
    expect(readJson(`{"text":"${name}"}`, LIMITS).value).toEqual({ text: name });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it.each([
    ['a NUL', '{"family":"a\\u0000b"}'],
    ['a lone high surrogate', '{"family":"a\\ud800b"}'],
    ['a lone low surrogate', '{"family":"\\udc00"}'],
    ['a NUL in a member name', '{"a\\u0000":1}'],
  ])('refuses %s with 400', (_name, text) => {
    expect(outcome(text)).toBe('400 The body holds a NUL character or an unpaired surrogate, which a FHIR string cannot hold');
  });

  it('refuses nesting past the depth limit with 413, without recursing', () => {
    const limits = { ...LIMITS, maxDepth: 5 };
    expect(readJson('[[[[{}]]]]', limits).value).toEqual([[[[{}]]]]);
    expect(outcome('[[[[[[]]]]]]', limits)).toBe('413 The body nests arrays and objects more than 5 levels deep, the limit of this server');
    expect(outcome('{"a":{"b":{"c":{"d":{"e":{}}}}}}', limits)).toMatch(/^413 .*more than 5 levels/);
    // far deeper than any stack: refused at the limit, long before the end of the text
    const deep = '['.repeat(1_000_000) + ']'.repeat(1_000_000);
    expect(outcome(deep)).toMatch(/^413 .*more than 100 levels/);
    expect(outcome(deep, { ...LIMITS, maxDepth: 2_000_000, maxNodes: 2_000_000 })).toBe('ok');
  });

  it('refuses more values than the node limit, and longer arrays than the array limit, with 413', () => {
    const limits = { maxDepth: 10, maxNodes: 10, maxArrayLength: 4 };
    expect(outcome('{"a":[1,2,3,4],"b":{"c":"d"}}', limits)).toBe('ok'); // 8 values
    expect(outcome('{"a":[1,2,3,4],"b":{"c":"d","e":[null,1]}}', limits)).toBe(
      '413 The body holds more than 10 JSON values (objects, arrays, strings, numbers...), the limit of this server',
    );
    expect(outcome('[1,2,3,4,5]', limits)).toBe('413 An array of the body has more than 4 elements, the limit of this server');
    const extensions = `{"resourceType":"Patient","extension":[${Array(200_000).fill('{}').join(',')}]}`;
    expect(outcome(extensions)).toMatch(/^413 An array of the body has more than 10000 elements/);
    expect(outcome(extensions, { ...LIMITS, maxArrayLength: 1_000_000 })).toMatch(/^413 The body holds more than 100000 JSON values/);
  });

  it('notes the numbers a JavaScript number would rewrite, by JSON Pointer, as decimalTexts does', () => {
    const text = `{"a":72.10,"b":[1,2.50,{"c":1e2,"d":"3.10 in a string"}],"e":1.5,"f":-0,"g":0.0,"h":"x\\"y","k/1":{"~":10.0}}`;
    expect(readJson(text, LIMITS).decimals).toEqual(decimalTexts(text));
    expect(readJson('{"a":1.5,"b":[1,2,3]}', LIMITS).decimals).toBeUndefined();
    fc.assert(
      fc.property(
        // values the reader refuses (forbidden names, NUL, lone surrogates) are left to their own tests
        fc.jsonValue({ depthSize: 'small' }).filter((v) => !REFUSED.test(JSON.stringify(v))),
        fc.array(fc.constantFrom('1.50', '1e2', '-0', '0.0', '72.10', '0.123456789012345678', '3', '-2.5E-3')),
        (value, literals) => {
          // numbers written as people write them, put in as objects' members and array elements
          const doc = { v: value, n: literals.map((l, k) => ({ [`m${k}`]: `@${k}@` })) };
          const text = JSON.stringify(doc).replace(/"@(\d+)@"/g, (_m, k) => literals[Number(k)]);
          expect(readJson(text, LIMITS).decimals).toEqual(decimalTexts(text));
        },
      ),
      { numRuns: 300 },
    );
  });
});
