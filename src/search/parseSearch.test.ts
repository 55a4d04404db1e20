import { SearchParameterRegistry } from './searchParameters';
import { parseSearch, splitOr } from './parseSearch';

const params = SearchParameterRegistry.official().forType('Patient');
const parse = (pairs: [string, string][], strict = false) => parseSearch('Patient', pairs, params, { strict, defaultCount: 20, maxCount: 100 });

describe('parseSearch', () => {
  it('splits OR values on unescaped commas', () => {
    expect(splitOr('a,b\\,c,d\\\\')).toEqual(['a', 'b,c', 'd\\']);
  });

  it('reads prefixes on dates and numbers but not on strings', () => {
    const p = parse([
      ['birthdate', 'ge1990-01'],
      ['name', 'ge'],
    ]);
    expect(p.clauses[0]).toMatchObject({ code: 'birthdate', type: 'date', values: [{ prefix: 'ge', value: '1990-01' }] });
    expect(p.clauses[1]).toMatchObject({ code: 'name', type: 'string', values: [{ prefix: 'eq', value: 'ge' }] });
  });

  it('keeps repeated parameters as AND and commas as OR', () => {
    const p = parse([
      ['given', 'a,b'],
      ['given', 'c'],
    ]);
    expect(p.clauses).toHaveLength(2);
    expect(p.clauses[0].values.map((v) => v.value)).toEqual(['a', 'b']);
  });

  it('caps _count at the maximum and parses _sort keys', () => {
    const p = parse([
      ['_count', '500'],
      ['_sort', '-birthdate,name,_id'],
    ]);
    expect(p.count).toBe(100);
    expect(p.sort).toEqual([
      { code: 'birthdate', type: 'date', descending: true },
      { code: 'name', type: 'string', descending: false },
      { code: '_id', type: 'token', descending: false },
    ]);
  });

  it('ignores unknown parameters with a warning, or refuses them when strict', () => {
    const lenient = parse([['shoe-size', '42']]);
    expect(lenient.clauses).toHaveLength(0);
    expect(lenient.warnings[0].diagnostics).toMatch(/shoe-size/);
    expect(() => parse([['shoe-size', '42']], true)).toThrow(/shoe-size/);
  });

  it.each([
    [['birthdate', 'ge1990-13'], /birthdate.*not a valid date/],
    [['birthdate', 'yesterday'], /birthdate/],
    [['_count', '-1'], /_count/],
    [['_total', 'lots'], /_total/],
    [['name:fuzzy', 'x'], /:fuzzy/],
    [['gender:missing', 'maybe'], /missing/],
  ] as [[string, string], RegExp][])('refuses %j', (pair, message) => {
    expect(() => parse([pair])).toThrow(message);
  });

  it('accepts a resource type modifier on references', () => {
    const p = parse([['general-practitioner:Practitioner', '123']]);
    expect(p.clauses[0]).toMatchObject({ modifier: 'Practitioner', type: 'reference' });
  });
});
