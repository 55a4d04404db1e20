import { Registry } from '../registry/registry';
import { ParamClause, parseSearch, SearchLimits, SearchTooCostly, splitOr } from './parseSearch';

const registry = new Registry();
const parse = (pairs: [string, string][], strict = false, type = 'Patient') => parseSearch(type, pairs, registry, { strict, defaultCount: 20, maxCount: 100 });

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
    expect((p.clauses[0] as ParamClause).values.map((v) => v.value)).toEqual(['a', 'b']);
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

  it.each<[string, boolean]>([
    ['((((', false],
    ['shoe-size', false],
    ['_text', false],
    ['shoe-size:exact', false],
    ['name', true],
    ['name:exact', true],
    ['general-practitioner.name', true],
    ['_id', true],
    ['_has:Observation:subject:code', true],
  ])('takes %s without a value as no constraint, and under strict handling refuses it when it names no parameter (%s)', (name, known) => {
    const lenient = parse([[name, '']]);
    expect(lenient.clauses).toHaveLength(0);
    expect(lenient.warnings).toEqual([]);
    if (known) expect(parse([[name, '']], true).clauses).toHaveLength(0);
    else expect(() => parse([[name, '']], true)).toThrow(/Unknown search parameter|not supported/);
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

  it('parses chains over every possible target type, or the one named', () => {
    const p = parse([['subject.identifier', 'urn:oid:1.2.250.1.213.1.4.8|1']], false, 'DocumentReference');
    expect(p.clauses[0].kind).toBe('chain');
    const chain = p.clauses[0] as { targets: { type: string }[] };
    expect(chain.targets.map((t) => t.type)).toContain('Patient');
    expect(chain.targets.map((t) => t.type)).toContain('Practitioner');
    const typed = parse([['subject:Patient.name', 'x']], false, 'DocumentReference').clauses[0] as { targets: { type: string; clause: ParamClause }[] };
    expect(typed.targets).toHaveLength(1);
    expect(typed.targets[0].clause).toMatchObject({ code: 'name', type: 'string' });
    const twoLevels = parse([['subject:Patient.general-practitioner:Practitioner.name', 'x']], false, 'DocumentReference').clauses[0] as any;
    expect(twoLevels.targets[0].clause.kind).toBe('chain');
  });

  it('parses _has, nested, and refuses a reference parameter that cannot point here', () => {
    const p = parse([['_has:AuditEvent:patient:_has:Provenance:target:agent', 'Practitioner/1']]);
    expect(p.clauses[0]).toMatchObject({ kind: 'has', type: 'AuditEvent', refParam: 'patient', clause: { kind: 'has', type: 'Provenance' } });
    expect(() => parse([['_has:DocumentReference:custodian:name', 'x']])).toThrow(/cannot reference a Patient/);
  });

  it('parses _include and _revinclude specs, with :iterate and *', () => {
    const p = parse([
      ['_include', 'DocumentReference:subject:Patient'],
      ['_include:iterate', 'Patient:general-practitioner'],
      ['_revinclude', 'Provenance:target'],
      ['_include', '*'],
    ], false, 'DocumentReference');
    expect(p.include).toEqual([
      { sourceType: 'DocumentReference', param: 'subject', targetType: 'Patient', iterate: false },
      { sourceType: 'Patient', param: 'general-practitioner', targetType: undefined, iterate: true },
      { sourceType: 'DocumentReference', param: '*', iterate: false },
    ]);
    expect(p.revinclude).toEqual([{ sourceType: 'Provenance', param: 'target', targetType: undefined, iterate: false }]);
  });

  it('splits composite values into component clauses', () => {
    const p = parse([['code-value-quantity', 'http://loinc.org|8480-6$gt100']], false, 'Observation');
    const c = p.clauses[0] as ParamClause;
    expect(c.type).toBe('composite');
    expect(c.components![0].map((x) => [x.code, x.values[0]])).toEqual([
      ['code', { prefix: 'eq', value: 'http://loinc.org|8480-6' }],
      ['value-quantity', { prefix: 'gt', value: '100' }],
    ]);
  });

  it('accepts a resource type modifier on references', () => {
    const p = parse([['general-practitioner:Practitioner', '123']]);
    expect(p.clauses[0]).toMatchObject({ modifier: 'Practitioner', type: 'reference' });
  });
});

describe('search limits', () => {
  const limits: SearchLimits = { maxParameters: 3, maxValues: 5, maxChainDepth: 2, maxHasDepth: 1, maxChainTargets: 20, maxElements: 2 };
  const limited = (pairs: [string, string][], type = 'Patient') => parseSearch(type, pairs, registry, { strict: false, defaultCount: 20, maxCount: 100, limits });

  it.each([
    ['parameters past the limit', [['name', 'a'], ['name', 'b'], ['name', 'c'], ['name', 'd']], 'Patient', /4 parameters; at most 3 .*SEARCH_MAX_PARAMETERS/],
    ['form and URL pairs alike, result parameters included', [['name', 'a'], ['_count', '1'], ['_sort', 'name'], ['_total', 'none']], 'Patient', /SEARCH_MAX_PARAMETERS/],
    ['values of OR lists past the limit', [['name', 'a,b,c'], ['given', 'd,e,f']], 'Patient', /6 values.*at most 5.*SEARCH_MAX_VALUES/],
    ['an escaped comma is one value, six commas are seven', [['_id', 'a,b,c,d,e,f,g']], 'Patient', /7 values/],
    ['a chain deeper than the limit', [['organization.partof.partof.name', 'x']], 'Patient', /deeper than 2 links.*SEARCH_MAX_CHAIN_DEPTH/],
    ['_has nested deeper than the limit', [['_has:Patient:link:_has:Patient:link:name', 'x']], 'Patient', /deeper than 1 levels.*SEARCH_MAX_HAS_DEPTH/],
    ['a chain expanding into more sub-queries than the limit', [['subject.subject._id', 'x']], 'Basic', /more than 20 sub-queries.*SEARCH_MAX_CHAIN_TARGETS/],
    ['_elements with more names than the limit', [['_elements', 'name,gender,birthDate']], 'Patient', /3 names; at most 2.*ELEMENTS_MAX_NAMES/],
  ] as [string, [string, string][], string, RegExp][])('refuses %s, as too costly, whatever the handling', (_, pairs, type, message) => {
    for (const strict of [false, true]) {
      let error: unknown;
      try {
        parseSearch(type, pairs, registry, { strict, defaultCount: 20, maxCount: 100, limits });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(SearchTooCostly);
      expect((error as SearchTooCostly).status).toBe(400);
      expect((error as SearchTooCostly).issues[0]).toMatchObject({ code: 'too-costly', diagnostics: expect.stringMatching(message) });
    }
  });

  it.each([
    ['as many parameters and values as the limits', [['name', 'a,b'], ['given', 'c,d'], ['gender', 'e']], 'Patient'],
    ['_page, _format and _pretty, which a next-page link adds', [['name', 'a'], ['given', 'b'], ['gender', 'c'], ['_page', 'token'], ['_format', 'json'], ['_pretty', 'true']], 'Patient'],
    ['a chain as deep as the limit', [['organization.partof.name', 'x']], 'Patient'],
    ['_has as deep as the limit', [['_has:Observation:patient:code', 'x']], 'Patient'],
    ['a chain on a parameter that targets every type, when the next parameter narrows it', [['subject.name', 'x']], 'Basic'],
    ['a chain whose target type is named', [['subject:Patient.link:Patient._id', 'x']], 'Basic'],
  ] as [string, [string, string][], string][])('accepts %s', (_, pairs, type) => {
    expect(() => limited(pairs, type)).not.toThrow();
  });

  it('counts the target types that have the next parameter, not every type a reference may point at', () => {
    // Basic.subject may point at any type; eleven of them have a name parameter
    const chain = limited([['subject.name', 'x']], 'Basic').clauses[0] as { targets: { type: string }[] };
    expect(chain.targets.map((t) => t.type)).toEqual(expect.arrayContaining(['Patient', 'Practitioner', 'Organization']));
    expect(chain.targets.length).toBeLessThanOrEqual(20);
  });
});
