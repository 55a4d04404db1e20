import fs from 'node:fs';
import path from 'node:path';
import fhirpath from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4';
import { literalPatterns, regexFunctions } from './fhirpathRegex';
import { R4_DIR } from './loader';
import { Terminology } from './terminology';
import { userPatternIssues } from './userPatterns';
import { findsIn, matchesWhole, patternProblem, UnsupportedPattern } from './userRegex';

const evaluate = (expression: string, resource: object = { resourceType: 'Basic' }) => fhirpath.evaluate(resource, expression, undefined, r4Model, { userInvocationTable: regexFunctions });

// a string on which a backtracking engine takes astronomically long with the patterns below
const LONG = 'a'.repeat(50_000) + 'b';

describe('FHIRPath regular expression functions on RE2', () => {
  it.each([
    ["'abc'.matches('b')", [true]], // partial match, as FHIRPath.js
    ["'abc'.matches('^b$')", [false]],
    ["'ABC'.matches('b')", [false]],
    ["'ABC'.matches('b', 'i')", [true]],
    ["'a\nb'.matches('a.b')", [true]], // `.` matches a new line (single-line mode)
    ["'x\nab'.matches('^ab$')", [false]],
    ["'x\nab'.matches('^ab$', 'm')", [true]],
    ["'abc'.matchesFull('b')", [false]],
    ["'abc'.matchesFull('a.c')", [true]],
    ["'caf\u00e9'.matches('\\\\u00e9$')", [true]], // JavaScript \\u escapes, as FHIRPath.js accepted them
    ["'2024-01-02'.replaceMatches('(\\\\d+)-(\\\\d+)-(\\\\d+)', '$3/$2/$1')", ['02/01/2024']],
    ["'aXbXc'.replaceMatches('X', '-')", ['a-b-c']],
    ["{}.matches('a')", []],
    ["'a'.matches({})", []],
  ])('%s = %j', (expression, expected) => {
    expect(evaluate(expression)).toEqual(expected);
  });

  it('refuses flags other than i and m, and collections of several strings', () => {
    expect(() => evaluate("'a'.matches('a', 'x')")).toThrow(/flags/);
    expect(() => evaluate("('a' | 'b').matches('a')")).toThrow(/single string/);
  });

  it('answers patterns that backtrack catastrophically in RegExp, correctly', () => {
    const resource = { resourceType: 'Basic', id: 'x', implicitRules: LONG };
    expect(evaluate("implicitRules.matches('^(a+)+$')", resource)).toEqual([false]);
    expect(evaluate("implicitRules.matches('(a|aa)+$')", resource)).toEqual([false]);
    expect(evaluate("implicitRules.matches('(a|aa)+b$')", resource)).toEqual([true]);
    expect(evaluate("implicitRules.replaceMatches('(a|aa)+$', '')", resource)).toEqual([LONG]);
  });

  it('refuses what RE2 cannot run in linear time, naming the pattern', () => {
    expect(() => evaluate("'aa'.matches('(a)\\\\1')")).toThrow(UnsupportedPattern);
    expect(() => evaluate("'aa'.matches('(a)\\\\1')")).toThrow('regular expression "(a)\\1" is not supported');
    expect(patternProblem('a(?=b)')).toMatch(/"a\(\?=b\)" is not supported/);
    expect(patternProblem('(?<!a)b')).toMatch(/not supported/);
    expect(patternProblem('x'.repeat(1001))).toMatch(/longer than 1000/);
    expect(patternProblem('[a-z]+\\d{2,3}')).toBeUndefined();
  });

  it('finds the patterns written in an expression', () => {
    const ast = fhirpath.parse("name.where(family.matches('^A')).given.all(matchesFull('[a-z]+', 'i')) and id.replaceMatches('it\\'s', 'x').exists() and id.matches(%p)");
    expect(literalPatterns(ast)).toEqual(['^A', '[a-z]+', "it's"]);
  });

  it('runs every pattern of the R4 core constraints (none is refused)', () => {
    const patterns = new Set<string>();
    for (const file of ['profiles-types.json', 'profiles-resources.json']) {
      const bundle = JSON.parse(fs.readFileSync(path.join(R4_DIR, file), 'utf8'));
      for (const entry of bundle.entry) {
        for (const element of entry.resource.snapshot?.element ?? []) {
          for (const c of element.constraint ?? []) if (/matches/.test(c.expression ?? '')) literalPatterns(fhirpath.parse(c.expression)).forEach((p) => patterns.add(p));
        }
      }
    }
    expect(patterns.size).toBeGreaterThan(5);
    expect([...patterns].filter((p) => patternProblem(p))).toEqual([]);
  });
});

describe('regex filters of ValueSets on RE2', () => {
  const system = 'http://example.org/cs';
  const codeSystem = { resourceType: 'CodeSystem', url: system, content: 'complete', concept: [{ code: 'aa' }, { code: 'ab' }, { code: 'a'.repeat(60) + 'b' }, { code: 'ba' }] };
  const valueSet = (pattern: string) => ({ resourceType: 'ValueSet', url: 'http://example.org/vs', compose: { include: [{ system, filter: [{ property: 'code', op: 'regex', value: pattern }] }] } });
  const terminology = (vs: object) => new Terminology({ codeSystem: (u) => (u === system ? codeSystem : undefined), valueSet: (u) => (u === 'http://example.org/vs' ? vs : undefined) });

  it('matches whole codes, in linear time', () => {
    expect(terminology(valueSet('(a|aa)+$')).expand('http://example.org/vs')?.map((c) => c.code)).toEqual(['aa']);
    expect(terminology(valueSet('a.')).expand('http://example.org/vs')?.map((c) => c.code)).toEqual(['aa', 'ab']);
  });

  it('refuses at upload a pattern RE2 cannot run, naming it and where it is', () => {
    expect(userPatternIssues(valueSet('(a)\\1'))).toEqual([
      { severity: 'error', code: 'not-supported', diagnostics: expect.stringContaining('regular expression "(a)\\1" is not supported'), expression: ['ValueSet.compose.include[0].filter[0].value'] },
    ]);
    expect(userPatternIssues(valueSet('(a|aa)+$'))).toEqual([]);
  });

  it('refuses at upload a constraint whose pattern RE2 cannot run', () => {
    const sd = { resourceType: 'StructureDefinition', differential: { element: [{ path: 'Patient' }, { path: 'Patient.name', constraint: [{ key: 'x-1', expression: "family.matches('^(?!a)')" }] }] } };
    expect(userPatternIssues(sd)).toEqual([
      { severity: 'error', code: 'not-supported', diagnostics: expect.stringMatching(/^constraint x-1: regular expression "\^\(\?!a\)" is not supported/), expression: ['StructureDefinition.differential.element[1].constraint[0].expression'] },
    ]);
  });
});

it('finds and matches with the helpers', () => {
  expect(findsIn('b', 'abc')).toBe(true);
  expect(matchesWhole('b', 'abc')).toBe(false);
});
