import { RawJson, stringifyJson } from './rawJson';

describe('stringifyJson', () => {
  const stored = '{"resourceType":"Patient","id":"p1","name":[{"family":"Dupont"}]}';

  it('splices stored texts in unchanged and yields the same JSON as the parsed value would', () => {
    const bundle = { resourceType: 'Bundle', entry: [{ resource: new RawJson(stored) }, { resource: new RawJson('{"a":"\\u0001x"}') }] };
    const text = stringifyJson(bundle);
    expect(text).toContain(stored);
    expect(JSON.parse(text)).toEqual({ resourceType: 'Bundle', entry: [{ resource: JSON.parse(stored) }, { resource: { a: '\u0001x' } }] });
  });

  it('leaves alone a string that looks like a placeholder without the nonce', () => {
    const value = { s: '\u00010:0', r: new RawJson('[1,2]') };
    expect(JSON.parse(stringifyJson(value))).toEqual({ s: '\u00010:0', r: [1, 2] });
  });

  it('parses the stored text when pretty printing or when serialised by plain JSON.stringify', () => {
    const value = { resource: new RawJson(stored) };
    expect(stringifyJson(value, true)).toBe(JSON.stringify({ resource: JSON.parse(stored) }, null, 2));
    expect(JSON.parse(JSON.stringify(value))).toEqual({ resource: JSON.parse(stored) });
  });

  it('handles many spliced values in one document, in order', () => {
    const entry = Array.from({ length: 50 }, (_, i) => ({ resource: new RawJson(`{"id":"${i}"}`) }));
    expect(JSON.parse(stringifyJson({ entry })).entry.map((e: { resource: { id: string } }) => e.resource.id)).toEqual(entry.map((_, i) => String(i)));
  });
});
