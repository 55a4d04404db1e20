import { readXml } from '../xml/readXml';
import { conceptMapIssues } from './conceptMapRules';
import { createServerValidator } from './forServer';

const LIMITS = { maxDepth: 100, maxNodes: 100_000, maxArrayLength: 10_000 };
const GENDER_VS = 'http://hl7.org/fhir/ValueSet/administrative-gender';
const GENDER_CS = 'http://hl7.org/fhir/administrative-gender';
const cm = (code: string, target: string) => ({
  resourceType: 'ConceptMap',
  url: 'http://example.org/fhir/ConceptMap/g',
  status: 'draft',
  sourceCanonical: GENDER_VS,
  targetCanonical: GENDER_VS,
  group: [{ source: GENDER_CS, target: GENDER_CS, element: [{ code, target: [{ code: target, equivalence: 'equivalent' }] }] }],
});

describe('conceptMapIssues', () => {
  const members: Record<string, string[]> = { 'http://x/vs/s': ['a', 'b'], 'http://x/vs/t': ['1'] };
  const inValueSet = (vs: string, _system: string | undefined, code: string) => (members[vs] ? members[vs].includes(code) : undefined);
  const map = (source: string | undefined, elements: object[]) => ({
    resourceType: 'ConceptMap',
    ...(source ? { sourceCanonical: source } : {}),
    targetUri: 'http://x/vs/t',
    group: [{ source: 'http://x/cs', target: 'http://x/cs2', element: elements }],
  });
  it.each([
    ['codes of both value sets', map('http://x/vs/s', [{ code: 'a', target: [{ code: '1' }] }]), []],
    ['a source code outside the source value set', map('http://x/vs/s', [{ code: 'c', target: [{ code: '1' }] }]), ['ConceptMap.group[0].element[0].code']],
    ['a target code outside the target value set', map('http://x/vs/s', [{ code: 'b', target: [{ code: '2' }] }]), ['ConceptMap.group[0].element[0].target[0].code']],
    ['a source value set not known here', map('http://x/vs/unknown', [{ code: 'c', target: [{ code: '1' }] }]), []],
    ['no source value set', map(undefined, [{ code: 'c' }]), []],
  ])('%s', (_label, resource, where) => {
    expect(conceptMapIssues(resource, inValueSet).map((i) => i.expression?.[0])).toEqual(where);
  });
  it('is an error in a conformance verdict, a warning on a write', () => {
    const bad = map('http://x/vs/s', [{ code: 'c' }]);
    expect(conceptMapIssues(bad, inValueSet, true).map((i) => i.severity)).toEqual(['error']);
    expect(conceptMapIssues(bad, inValueSet, false).map((i) => i.severity)).toEqual(['warning']);
  });
});

describe("the server's validator", () => {
  const v = createServerValidator();
  const issues = (r: unknown, verdict: boolean) =>
    v.validate(r, verdict ? { unknownExtensions: 'error' } : {}).filter((i) => i.diagnostics?.includes('value set') && i.expression?.[0]?.startsWith('ConceptMap.group'));
  it('reports codes outside the value sets of a ConceptMap, in JSON and in XML', () => {
    expect(issues(cm('male', 'female'), true)).toEqual([]);
    const json = issues(cm('man', 'woman'), true);
    expect(json.map((i) => [i.severity, i.expression?.[0]])).toEqual([
      ['error', 'ConceptMap.group[0].element[0].code'],
      ['error', 'ConceptMap.group[0].element[0].target[0].code'],
    ]);
    const xml = readXml(
      `<ConceptMap xmlns="http://hl7.org/fhir"><url value="http://example.org/fhir/ConceptMap/g"/><status value="draft"/><sourceCanonical value="${GENDER_VS}"/><targetCanonical value="${GENDER_VS}"/>` +
        `<group><source value="${GENDER_CS}"/><target value="${GENDER_CS}"/><element><code value="man"/><target><code value="female"/><equivalence value="equivalent"/></target></element></group></ConceptMap>`,
      LIMITS,
    ).value;
    expect(issues(xml, true).map((i) => [i.severity, i.expression?.[0]])).toEqual([['error', 'ConceptMap.group[0].element[0].code']]);
    // a write is not refused for it: the specification states it without a SHALL
    expect(issues(cm('man', 'woman'), false).map((i) => i.severity)).toEqual(['warning', 'warning']);
  });
});
