import { asksRespondAsync, parseExportRequest } from './exportRequest';

const SERVED = ['Patient', 'DocumentReference', 'Binary', 'Practitioner'];

describe('parseExportRequest', () => {
  const cases: [string, [string, string][], boolean, ReturnType<typeof parseExportRequest> | RegExp][] = [
    ['no parameter: every served type but Binary', [], false, { types: ['Patient', 'DocumentReference', 'Practitioner'] }],
    ['_type narrows, repeated and comma-separated', [['_type', 'Patient,DocumentReference'], ['_type', 'Patient']], false, { types: ['Patient', 'DocumentReference'] }],
    ['_type Binary refused', [['_type', 'Binary']], false, /not exported/],
    ['_type unknown refused', [['_type', 'Group']], false, /unknown resource type/],
    ['_since an instant', [['_since', '2024-01-31T12:00:00+01:00']], false, { types: ['Patient', 'DocumentReference', 'Practitioner'], since: '2024-01-31T11:00:00.000Z' }],
    ['_since a date only refused', [['_since', '2024-01-31']], false, /instant/],
    ['_since twice refused', [['_since', '2024-01-31T12:00:00Z'], ['_since', '2025-01-31T12:00:00Z']], false, /more than once/],
    ['_type empty refused', [['_type', '']], false, /names no resource type/],
    ['_type of commas only refused', [['_type', ' , ']], false, /names no resource type/],
    ['_outputFormat NDJSON and its abbreviations', [['_outputFormat', 'application/fhir+ndjson'], ['_outputFormat', 'ndjson'], ['_outputFormat', 'application/ndjson']], false, { types: ['Patient', 'DocumentReference', 'Practitioner'] }],
    ['_outputFormat other refused', [['_outputFormat', 'text/csv']], false, /not supported/],
    ['_typeFilter refused', [['_typeFilter', 'Patient?active=true']], false, /not supported by this server/],
    ['_typeFilter ignored when lenient', [['_typeFilter', 'Patient?active=true']], true, { types: ['Patient', 'DocumentReference', 'Practitioner'] }],
    ['an unknown parameter refused', [['foo', 'bar']], false, /does not take/],
  ];
  it.each(cases)('%s', (_name, params, lenient, expected) => {
    if (expected instanceof RegExp) expect(() => parseExportRequest(params, SERVED, lenient)).toThrow(expected);
    else expect(parseExportRequest(params, SERVED, lenient)).toEqual(expected);
  });
});

describe('parseExportRequest at patient level (fewer types served than known)', () => {
  const PATIENT_LEVEL = ['Patient', 'DocumentReference', 'Binary'];
  it('a known type outside the patient compartment is refused as such', () => {
    expect(() => parseExportRequest([['_type', 'Practitioner']], PATIENT_LEVEL, false, SERVED)).toThrow(/outside the patient compartment/);
  });
  it('an unknown type is still unknown', () => {
    expect(() => parseExportRequest([['_type', 'Group']], PATIENT_LEVEL, false, SERVED)).toThrow(/unknown resource type/);
  });
});

describe('_outputFormat sent unencoded', () => {
  it('application/fhir ndjson (the + arrived as a space) is the IG type', () => {
    expect(parseExportRequest([['_outputFormat', 'application/fhir ndjson']], SERVED, false)).toEqual({ types: ['Patient', 'DocumentReference', 'Practitioner'] });
  });
  it('other spaced values are still refused', () => {
    expect(() => parseExportRequest([['_outputFormat', 'application/fhir json']], SERVED, false)).toThrow(/not supported/);
  });
});

describe('asksRespondAsync', () => {
  it.each([
    ['respond-async', true],
    ['return=minimal, respond-async', true],
    ['handling=lenient; respond-async', true],
    ['return=representation', false],
    [undefined, false],
  ] as const)('%s → %s', (header, expected) => expect(asksRespondAsync(header)).toBe(expected));
});
