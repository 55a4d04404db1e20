import { Registry } from '../registry/registry';
import { parseSearch } from '../search/parseSearch';
import { namedRecord } from './namedRecord';
import { partitionStep } from './partitioning';

const registry = new Registry();
const BASE = 'https://fhir.example.fr/fhir';
const element = (type: string) => {
  const first = registry.types.get(type)?.patientCompartmentParams[0];
  return first ? registry.searchParameters.get(type, first)?.expression : undefined;
};
const record = (type: string, query: string) =>
  namedRecord(parseSearch(type, [...new URLSearchParams(query)], registry, { strict: true, defaultCount: 20, maxCount: 100 }), element(type), BASE);

describe('namedRecord: the record a search confines itself to', () => {
  it.each([
    ['DocumentReference', 'patient=p1', 'p1'],
    ['DocumentReference', 'subject=Patient/p1', 'p1'],
    ['DocumentReference', `subject=${BASE}/Patient/p1`, 'p1'],
    ['DocumentReference', 'subject:Patient=p1', 'p1'],
    ['DocumentReference', 'type=http://loinc.org|11488-4&patient=p1', 'p1'],
    ['Observation', 'subject=Patient/p1&code=8867-4', 'p1'],
    ['Observation', 'patient=p1', 'p1'],
    ['Consent', 'patient=Patient/p1', 'p1'],
    ['Patient', '_id=p1', 'p1'],
  ])('%s?%s is in the record %s', (type, query, expected) => {
    expect(record(type, query)).toBe(expected);
  });

  it.each([
    // several values: several records
    ['DocumentReference', 'patient=p1,p2'],
    ['Patient', '_id=p1,p2'],
    // not the element that decides the record: a document a patient authored may be in their child's record
    ['DocumentReference', 'author=Patient/p1'],
    // events about a record may be filed outside it (a deleted record's last event, refusals)
    ['AuditEvent', 'patient=p1'],
    // a Group is filed in its first member's record only
    ['Group', 'member=Patient/p1'],
    // a subject that is not a Patient, or an absolute URL elsewhere
    ['DocumentReference', 'subject=Group/g1'],
    ['DocumentReference', 'subject=https://other.example/fhir/Patient/p1'],
    ['DocumentReference', 'subject:missing=true'],
    ['DocumentReference', 'subject:identifier=urn:oid:1.2.250.1.213.1.4.8|123'],
    // directory types have no record
    ['Practitioner', '_id=x'],
  ])('%s?%s names no one record', (type, query) => {
    expect(record(type, query)).toBeUndefined();
  });
});

describe('partitionStep: what DATABASE_PARTITIONS does to a table', () => {
  it.each([
    [{ kind: 'plain' } as const, 8, 'convert'],
    [{ kind: 'hash', partitions: 8 } as const, 8, 'keep'],
    [{ kind: 'absent' } as const, 8, 'keep'],
  ])('%j with %i wanted: %s', (state, wanted, step) => {
    expect(partitionStep('resource', state, wanted)).toBe(step);
  });

  it('refuses another partition count than the one the database has', () => {
    expect(() => partitionStep('resource', { kind: 'hash', partitions: 4 }, 8)).toThrow(/partitioned in 4, DATABASE_PARTITIONS says 8/);
  });
});
