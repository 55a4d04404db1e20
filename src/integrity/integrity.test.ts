import { resolvableReferences } from './references';
import { identifierClaims } from './uniqueIdentifiers';

const BASE = 'https://fhir.example.org/fhir/';

describe('resolvableReferences', () => {
  it('lists local and contained references and Bundle placeholders with their element, and leaves the others alone', () => {
    const refs = resolvableReferences(
      {
        resourceType: 'DocumentReference',
        contained: [{ resourceType: 'Practitioner', id: 'a', organization: { reference: 'Organization/o1' } }],
        subject: { reference: 'Patient/p1' },
        author: [{ reference: '#a' }, { reference: `${BASE}Practitioner/pr1/_history/2` }, { reference: 'https://other.example.org/fhir/Practitioner/x' }, { identifier: { system: 's', value: 'v' } }],
        context: { related: [{ reference: 'urn:uuid:0f0e6d8c-6b55-4b2e-9a43-1c2b3a4d5e6f' }] },
        extension: [{ url: 'u', valueReference: { reference: 'Encounter/e1' } }],
        text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><a href="Patient/p9">x</a></div>' },
      },
      BASE,
    );
    expect(refs.map((r) => [r.kind, r.reference, r.expression])).toEqual([
      ['local', 'Organization/o1', 'DocumentReference.contained[0].organization'],
      ['local', 'Patient/p1', 'DocumentReference.subject'],
      ['contained', '#a', 'DocumentReference.author[0]'],
      ['local', `${BASE}Practitioner/pr1/_history/2`, 'DocumentReference.author[1]'],
      ['placeholder', 'urn:uuid:0f0e6d8c-6b55-4b2e-9a43-1c2b3a4d5e6f', 'DocumentReference.context.related[0]'],
      ['local', 'Encounter/e1', 'DocumentReference.extension[0].valueReference'],
    ]);
    expect(refs[3]).toMatchObject({ targetType: 'Practitioner', targetId: 'pr1', targetVersion: '2' });
  });

  it('checks nothing in the audit trail or in a stored Bundle', () => {
    expect(resolvableReferences({ resourceType: 'AuditEvent', agent: [{ who: { reference: 'Practitioner/x' } }] }, BASE)).toEqual([]);
    expect(resolvableReferences({ resourceType: 'Bundle', entry: [{ resource: { resourceType: 'Composition', subject: { reference: 'Patient/x' } } }] }, BASE)).toEqual([]);
  });
});

describe('identifierClaims', () => {
  const nir = 'urn:oid:1.2.250.1.213.1.4.8';
  it('claims the INS, not the NSS slice, an old INS or a local identifier', () => {
    const claims = identifierClaims({
      resourceType: 'Patient',
      identifier: [
        { system: 'urn:oid:1.2.250.1.71.4.2.7', value: 'IPP-1' },
        { system: nir, value: '295109912611193' },
        { system: nir, value: '180029912345610', use: 'old' },
        { system: nir, value: '253072B07300470', type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'NH' }] } },
        { system: 'urn:oid:1.2.250.1.213.1.4.10', value: '253072A07300443' },
      ],
    });
    expect(claims).toEqual([
      { system: nir, value: '295109912611193', expression: 'Patient.identifier[1]' },
      { system: 'urn:oid:1.2.250.1.213.1.4.10', value: '253072A07300443', expression: 'Patient.identifier[4]' },
    ]);
  });

  it('claims RPPS/ADELI for a Practitioner and FINESS/SIRET for an Organization, nothing for other types', () => {
    expect(identifierClaims({ resourceType: 'Practitioner', identifier: [{ system: 'urn:oid:1.2.250.1.71.4.2.1', value: '810002909371' }] })).toHaveLength(1);
    expect(identifierClaims({ resourceType: 'Organization', identifier: [{ system: 'http://finess.sante.gouv.fr', value: '750712184' }, { system: 'https://sirene.fr', value: '26750045200011' }] })).toHaveLength(2);
    expect(identifierClaims({ resourceType: 'RelatedPerson', identifier: [{ system: 'urn:oid:1.2.250.1.213.1.4.8', value: '295109912611193' }] })).toEqual([]);
  });
});
