import type { Issue } from '../errors';
import { Validator } from './index';
import { searchedTypes, searchsetIssues } from './searchsetRules';

/** Searchset Bundles: the self link says what was searched, the entries say why they are there. */
const TYPES = new Set(['Patient', 'Observation', 'DocumentReference', 'OperationOutcome', 'Immunization']);
const isType = (n: string) => TYPES.has(n);

describe('searchedTypes', () => {
  it.each([
    ['http://h/fhir/Patient?name=x', ['Patient']],
    ['http://h/fhir/Patient', ['Patient']],
    ['http://h/fhir/Patient/1/Observation?code=x', ['Observation']],
    ['http://h/fhir?_type=Observation,DocumentReference', ['Observation', 'DocumentReference']],
    ['http://h/fhir?_type=Observation%2CDocumentReference&name=x', ['Observation', 'DocumentReference']],
    ['http://h/fhir?name=x', undefined],
    ['http://h/fhir/Patient/1', undefined],
  ])('%s → %j', (url, expected) => {
    expect(searchedTypes(url, isType)).toEqual(expected);
  });
});

const bundle = (self: string | undefined, entries: { resource: any; mode?: string }[]) => ({
  resourceType: 'Bundle',
  type: 'searchset',
  ...(self ? { link: [{ relation: 'self', url: self }] } : {}),
  entry: entries.map((e, i) => ({ fullUrl: `http://h/fhir/x/${i}`, resource: e.resource, ...(e.mode ? { search: { mode: e.mode } } : {}) })),
});
const oo = { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid' }] };
const lines = (issues: Issue[]) => issues.map((i) => `${i.severity} ${i.expression?.[0]}: ${i.diagnostics}`);

describe('searchsetIssues', () => {
  it('a match of the searched type with an id, and an outcome that is an OperationOutcome: nothing', () => {
    expect(searchsetIssues(bundle('http://h/fhir/Patient?name=x', [{ resource: { resourceType: 'Patient', id: 'a' }, mode: 'match' }, { resource: oo, mode: 'outcome' }]), 'Bundle', isType)).toEqual([]);
  });
  it('a match without id, of a type not searched', () => {
    expect(lines(searchsetIssues(bundle('http://h/fhir/Patient?name=x', [{ resource: { resourceType: 'Observation' }, mode: 'match' }]), 'Bundle', isType))).toEqual([
      'error Bundle.entry[0].resource: Search results must have ids',
      'error Bundle.entry[0].resource: This is not a matching resource type for the specified search (Observation expecting [Patient])',
    ]);
  });
  it('an outcome that is not an OperationOutcome; an include needs an id but may be of any type', () => {
    const b = bundle('http://h/fhir?_type=Observation', [
      { resource: { resourceType: 'Patient', id: 'p' }, mode: 'outcome' },
      { resource: { resourceType: 'Patient' }, mode: 'include' },
    ]);
    expect(lines(searchsetIssues(b, 'Bundle', isType))).toEqual([
      'error Bundle.entry[0].resource: This is not an OperationOutcome (Patient)',
      'error Bundle.entry[1].resource: Search results must have ids',
    ]);
  });
  it('no self link and no modes: warnings only', () => {
    expect(lines(searchsetIssues(bundle(undefined, [{ resource: { resourceType: 'Patient' } }]), 'Bundle', isType))).toEqual([
      'warning Bundle: SearchSet Bundles should have a self link that specifies what the search was',
      'warning Bundle: SearchSet bundles should have search modes on the entries',
    ]);
  });
  it('a search the self link does not type (no path type, no _type): no type check', () => {
    expect(searchsetIssues(bundle('http://h/fhir?name=x', [{ resource: { resourceType: 'Patient', id: 'p' }, mode: 'match' }]), 'Bundle', isType)).toEqual([]);
  });
  it('other Bundle types are not concerned', () => {
    expect(searchsetIssues({ ...bundle(undefined, [{ resource: { resourceType: 'Patient' }, mode: 'match' }]), type: 'collection' }, 'Bundle', isType)).toEqual([]);
  });
});

it('the validator applies them to a searchset Bundle', () => {
  const v = Validator.create();
  const b = bundle('http://h/fhir/Patient?name=x', [
    { resource: { resourceType: 'Patient', id: 'p', text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>' } }, mode: 'match' },
    { resource: { resourceType: 'Patient', text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>' } }, mode: 'match' },
  ]);
  const errs = v.validate(b).filter((i) => i.severity === 'error');
  expect(errs.map((i) => `${i.expression?.[0]}: ${i.diagnostics}`)).toEqual(['Bundle.entry[1].resource: Search results must have ids']);
});
