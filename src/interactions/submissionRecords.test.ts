import { submissionRecords } from './documentSubmission';

const BASE = 'https://fhir.example/fhir';
const entry = (resource: Record<string, unknown>) => ({ resource });

describe('submissionRecords: the records an MHD submission names by id (decision 031)', () => {
  it.each([
    ['a SubmissionSet subject', [entry({ resourceType: 'List', subject: { reference: 'Patient/p1' } })], ['p1']],
    ['a document subject under the base URL', [entry({ resourceType: 'DocumentReference', subject: { reference: `${BASE}/Patient/p1` } })], ['p1']],
    ['a version-specific subject', [entry({ resourceType: 'DocumentReference', subject: { reference: 'Patient/p1/_history/1' } })], ['p1']],
    ['a Binary securityContext', [entry({ resourceType: 'Binary', securityContext: { reference: 'Patient/p2' } })], ['p2']],
    ['each record once', [entry({ resourceType: 'List', subject: { reference: 'Patient/p1' } }), entry({ resourceType: 'DocumentReference', subject: { reference: 'Patient/p1' } })], ['p1']],
    ['several records', [entry({ resourceType: 'List', subject: { reference: 'Patient/p1' } }), entry({ resourceType: 'DocumentReference', subject: { reference: 'Patient/p2' } })], ['p1', 'p2']],
    ['not a conditional reference (resolved later by the caller\'s search)', [entry({ resourceType: 'List', subject: { reference: 'Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|1' } })], []],
    ['not an in-Bundle reference', [entry({ resourceType: 'List', subject: { reference: 'urn:uuid:4f0c7e0a-0000-4000-8000-000000000001' } })], []],
    ['not another server\'s Patient', [entry({ resourceType: 'List', subject: { reference: 'https://other.example/fhir/Patient/p1' } })], []],
    ['not a Group subject', [entry({ resourceType: 'List', subject: { reference: 'Group/g1' } })], []],
    ['not the subject of another type', [entry({ resourceType: 'Observation', subject: { reference: 'Patient/p1' } })], []],
    ['nothing from a malformed entry', [undefined, entry({ resourceType: 'List', subject: 'Patient/p1' }), entry({ resourceType: 'List', subject: { reference: 42 } })], []],
  ] as [string, unknown[], string[]][])('%s', (_n, entries, expected) => {
    expect(submissionRecords(entries, BASE)).toEqual(expected);
  });
});
