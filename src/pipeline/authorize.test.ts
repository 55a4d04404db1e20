import type { Route } from '../interactions/dispatch';
import type { FhirRequest } from '../interactions/types';
import { Registry } from '../registry/registry';
import { identifierHolders, namedRecords, reachesOtherRecords } from './authorize';

const req = (query: [string, string][]): FhirRequest => ({ method: 'GET', query, headers: {}, prefer: {} });
const route = (interaction: Route['interaction']): Route => ({ interaction, resourceType: 'DocumentReference', id: 'x' });

describe('reachesOtherRecords: may a request naming records return resources of others?', () => {
  it.each([
    ['a read of one resource', 'read', [], false],
    ['a read, whatever its parameters', 'read', [['_include', 'DocumentReference:author']], false],
    ['a search by patient', 'search-type', [['patient', 'p1']], false],
    ['a search by patient and type', 'search-type', [['patient', 'p1'], ['type', '11488-4']], false],
    ['an _include', 'search-type', [['patient', 'p1'], ['_include', 'DocumentReference:relatesto']], true],
    ['an _include:iterate', 'search-type', [['patient', 'p1'], ['_include:iterate', '*']], true],
    ['a _revinclude', 'search-type', [['patient', 'p1'], ['_revinclude', 'Provenance:target']], true],
    ['a _has', 'search-type', [['patient', 'p1'], ['_has:List:item:code', 'x']], true],
    ['a chain', 'search-type', [['patient', 'p1'], ['author.name', 'x']], true],
    ['a _list', 'search-type', [['patient', 'p1'], ['_list', 'l1']], true],
    ['a compartment search with _revinclude', 'search-compartment', [['_revinclude', 'Provenance:target']], true],
    ['a conditional update by patient (its body may name another record)', 'conditional-update', [['patient', 'p1']], true],
    ['a conditional delete by patient', 'conditional-delete', [['patient', 'p1']], true],
  ] as [string, Route['interaction'], [string, string][], boolean][])('%s', (_n, interaction, query, expected) => {
    expect(reachesOtherRecords(route(interaction), req(query))).toBe(expected);
  });

  // its patient is also its agent, and events about a record may be filed outside it (decision 009, amendment of 2026-12-06)
  it.each([
    ['by patient', [['patient', 'p1']]],
    ['by patient and agent', [['patient', 'Patient/p1'], ['agent', 'Patient/p1']]],
  ] as [string, [string, string][]][])('a search of the trail %s is not confined to the record it names', (_n, query) => {
    expect(reachesOtherRecords({ interaction: 'search-type', resourceType: 'AuditEvent' }, req(query))).toBe(true);
  });
});

describe('namedRecords: the records a request names, decided with break-glass and refused with 403 when closed (decision 031)', () => {
  const at = (interaction: Route['interaction'], resourceType: string, id?: string): Route => ({ interaction, resourceType, ...(id ? { id } : {}) });
  it.each([
    ['a Patient by id', at('read', 'Patient', 'p1'), [], ['p1']],
    ['a write of a Patient by id', at('delete', 'Patient', 'p1'), [], ['p1']],
    ['a resource by id names no record by its URL (its row does)', at('patch', 'DocumentReference', 'd1'), [], []],
    ['a search by patient', at('search-type', 'DocumentReference'), [['patient', 'p1']], ['p1']],
    ['a search by subject', at('search-type', 'DocumentReference'), [['subject', 'Patient/p1']], ['p1']],
    ['a conditional update by patient', at('conditional-update', 'DocumentReference'), [['patient', 'p1'], ['identifier', 'x']], ['p1']],
    ['a conditional patch by subject', at('conditional-patch', 'Observation'), [['subject', 'Patient/p1,Patient/p2']], ['p1', 'p2']],
    ['a conditional delete by patient', at('conditional-delete', 'DocumentReference'), [['patient', 'p1']], ['p1']],
    ['subject with the Patient type', at('search-type', 'DocumentReference'), [['subject:Patient', 'p1']], ['p1']],
    ['a version-specific reference', at('search-type', 'DocumentReference'), [['patient', 'Patient/p1/_history/2'], ['subject', 'https://x.example/fhir/Patient/p2/_history/1']], ['p1', 'p2']],
    ['a bare id with a version', at('search-type', 'DocumentReference'), [['patient', 'p1/_history/2'], ['subject:Patient', 'p2/_history/1']], ['p1', 'p2']],
    ['a bare id under subject without the type names none (it could be of any type)', at('search-type', 'DocumentReference'), [['subject', 'p1']], []],
    ['Patient _id is an id, never versioned', at('search-type', 'Patient'), [['_id', 'p1'], ['_id', 'p2/_history/1']], ['p1']],
    [':missing names no patient', at('search-type', 'DocumentReference'), [['patient:missing', 'false'], ['subject:missing', 'true']], []],
    [':not excludes the patient', at('search-type', 'Observation'), [['patient:not', 'p1']], []],
    [':identifier names an identifier', at('search-type', 'Observation'), [['patient:identifier', 'urn:oid:1|123']], []],
    ['a conditional delete by other criteria', at('conditional-delete', 'DocumentReference'), [['identifier', 'p1']], []],
    ['a create names none (its body is decided by the write check)', at('create', 'DocumentReference'), [['patient', 'p1']], []],
  ] as [string, Route, [string, string][], string[]][])('%s', (_n, r, query, expected) => {
    expect(namedRecords(r, req(query))).toEqual(expected);
  });
});

describe('identifierHolders: what a search by identifier can return (decision 008, amendment of 2026-12-07)', () => {
  const search = (resourceType: string): Route => ({ interaction: 'search-type', resourceType });
  const S = 'urn:oid:1.2.250.1.213.1.4.8';
  // the server's own definitions: which types have `identifier`, and of which type each parameter is
  const registry = new Registry();
  const paramType = (type: string, code: string) => registry.searchParams(type).get(code)?.type;
  const holders = (r: Route, query: [string, string][]) => identifierHolders(r, req(query), paramType);
  it.each([
    ['one system|code', search('Patient'), [['identifier', `${S}|1234`]], [{ system: S, code: '1234' }]],
    ['several values', search('Patient'), [['identifier', `${S}|1,urn:x|2`]], [{ system: S, code: '1' }, { system: 'urn:x', code: '2' }]],
    ['an escaped comma is part of the code, as the engine reads it', search('Patient'), [['identifier', `${S}|a\\,b`]], [{ system: S, code: 'a,b' }]],
    ['with other parameters of the type', search('DocumentReference'), [['status', 'current'], ['identifier', `${S}|1`], ['_count', '5']], [{ system: S, code: '1' }]],
    ['with representation parameters', search('Practitioner'), [['identifier', `${S}|1`], ['_format', 'xml'], ['_summary', 'count']], [{ system: S, code: '1' }]],
    ['the first identifier that has the shape, when two are ANDed', search('Patient'), [['identifier', '|1'], ['identifier', `${S}|2`]], [{ system: S, code: '2' }]],
    ['with a date and a sort by date', search('DocumentReference'), [['identifier', `${S}|1`], ['date', 'ge2020'], ['_sort', '-date,_id']], [{ system: S, code: '1' }]],
    ['with a string and :missing on a token', search('Patient'), [['identifier', `${S}|1`], ['family', 'x'], ['gender:missing', 'false']], [{ system: S, code: '1' }]],
    ['with _id, _lastUpdated, _tag, _elements, _total', search('Consent'), [['identifier', `${S}|1`], ['_id', 'a'], ['_lastUpdated', 'ge2020'], ['_tag', 'x|y'], ['_elements', 'status'], ['_total', 'accurate']], [{ system: S, code: '1' }]],
  ] as [string, Route, [string, string][], unknown][])('%s: narrowed', (_n, r, query, values) => {
    expect(holders(r, query)).toEqual({ resourceType: r.resourceType, values, returned: r.resourceType });
  });

  it.each([
    ['DocumentReference', 'patient.identifier'],
    ['DocumentReference', 'subject:Patient.identifier'],
    ['DocumentReference', 'patient:Patient.identifier'],
    ['List', 'patient.identifier'],
    ['List', 'subject:Patient.identifier'],
  ])("%s?%s (the MHD query): narrowed to the records of the Patients holding the value", (type, name) => {
    expect(holders(search(type), [[name, `${S}|1`], ['status', 'current']])).toEqual({ resourceType: 'Patient', values: [{ system: S, code: '1' }], returned: type });
  });

  it.each([
    ['a code without system', search('Patient'), [['identifier', '1234']]],
    ['an empty system', search('Patient'), [['identifier', '|1234']]],
    ['a system without code', search('Patient'), [['identifier', `${S}|`]]],
    ['one value of several without system', search('Patient'), [['identifier', `${S}|1,2`]]],
    ['a modifier', search('Patient'), [['identifier:of-type', `${S}|NH|1`]]],
    ['a :not', search('Patient'), [['identifier:not', `${S}|1`]]],
    ['an _include', search('Patient'), [['identifier', `${S}|1`], ['_include', 'Patient:general-practitioner']]],
    ['a _revinclude', search('Patient'), [['identifier', `${S}|1`], ['_revinclude', 'DocumentReference:subject']]],
    ['a _has', search('Patient'), [['identifier', `${S}|1`], ['_has:DocumentReference:subject:status', 'current']]],
    ['a chain to another reference', search('DocumentReference'), [['author.identifier', `${S}|1`]]],
    ['a chain by identifier on a type its subject does not file', search('Communication'), [['subject.identifier', `${S}|1`]]],
    ['a chain to a Group', search('DocumentReference'), [['subject:Group.identifier', `${S}|1`]]],
    // found by an outside probe: a List whose subject is a Device is filed in the record of its source
    ['a chain by a bare subject (a List)', search('List'), [['subject.identifier', `${S}|1`]]],
    ['a chain by a bare subject (a document)', search('DocumentReference'), [['subject.identifier', `${S}|1`]]],
    ['a chain to a Device', search('List'), [['subject:Device.identifier', `${S}|1`]]],
    ['a chain with a modifier', search('DocumentReference'), [['patient.identifier:of-type', `${S}|NH|1`]]],
    ['a chain and another chain', search('DocumentReference'), [['patient.identifier', `${S}|1`], ['author.name', 'x']]],
    ['a chain and an _include', search('DocumentReference'), [['patient.identifier', `${S}|1`], ['_include', 'DocumentReference:subject']]],
    ['an identifier and a chain', search('DocumentReference'), [['identifier', `${S}|1`], ['author.name', 'x']]],
    ['a _list', search('Patient'), [['identifier', `${S}|1`], ['_list', 'l1']]],
    ['the trail', search('AuditEvent'), [['identifier', `${S}|1`]]],
    ['no identifier', search('Patient'), [['name', 'x']]],
    ['a history of the type', { interaction: 'history-type', resourceType: 'Patient' } as Route, [['identifier', `${S}|1`]]],
    ['a compartment search', { interaction: 'search-compartment', resourceType: 'Patient', id: 'p1', compartmentType: 'DocumentReference' } as Route, [['identifier', `${S}|1`]]],
    ['a conditional delete', { interaction: 'conditional-delete', resourceType: 'Patient' } as Route, [['identifier', `${S}|1`]]],
    // found by an outside probe: lenient handling ignores an unknown `identifier`, so the search matched every row
    ['a type without an identifier parameter (Provenance)', search('Provenance'), [['identifier', `${S}|1`]]],
    ['a type without an identifier parameter (Binary)', search('Binary'), [['identifier', `${S}|1`]]],
    // a reference parameter's target is readable only in the records open to the caller
    ['a reference parameter', search('DocumentReference'), [['identifier', `${S}|1`], ['related', 'Observation/o1']]],
    ['a reference parameter by :identifier', search('DocumentReference'), [['identifier', `${S}|1`], ['author:identifier', `${S}|2`]]],
    ['a List by item', search('List'), [['identifier', `${S}|1`], ['item', 'Observation/o1']]],
    ['a sort by a reference parameter', search('DocumentReference'), [['identifier', `${S}|1`], ['_sort', 'subject']]],
    ['a composite parameter', search('DocumentReference'), [['identifier', `${S}|1`], ['relationship', 'replaces$DocumentReference/d1']]],
    ['an unknown parameter', search('Patient'), [['identifier', `${S}|1`], ['shoe-size', '42']]],
    ['an unknown special parameter', search('Patient'), [['identifier', `${S}|1`], ['_text', 'x']]],
    ['the MHD query naming a patient too', search('DocumentReference'), [['patient.identifier', `${S}|1`], ['patient', 'p2']]],
  ] as [string, Route, [string, string][]][])('%s: not narrowed', (_n, r, query) => {
    expect(holders(r, query)).toBeUndefined();
  });
});
