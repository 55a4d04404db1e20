import { loadSearchParameters } from '../registry/registry';
import { extractIndexRows } from './extract';

/** Our own SearchParameters compile to the fast JSON walker, not the fhirpath.js fallback. */
describe('own search parameters', () => {
  const registry = loadSearchParameters();

  it.each([
    ['Patient', 'ins'],
    ['Practitioner', 'rpps'],
    ['PractitionerRole', 'rpps'],
    ['Organization', 'finess'],
    ['DocumentReference', 'confidentiality'],
  ])('%s.%s runs on the fast walker', (type, code) => {
    expect(registry.get(type, code)?.engine).toBe('fast');
  });

  it('indexes only the INS identifiers under ins', () => {
    const rows = extractIndexRows(
      {
        resourceType: 'Patient',
        identifier: [
          { system: 'urn:oid:1.2.250.1.213.1.4.8', value: '295109912611193' },
          { system: 'urn:oid:1.2.250.1.213.1.4.10', value: '253072B07300470' },
          { system: 'urn:oid:1.2.250.1.999', value: 'IPP-1' },
        ],
      },
      registry,
    );
    expect(rows.token.filter((r) => r.param === 'ins').map((r) => r.code)).toEqual(['295109912611193', '253072B07300470']);
  });
});
