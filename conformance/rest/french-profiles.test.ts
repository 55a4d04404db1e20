import crypto from 'node:crypto';
import { http, startTarget, Target } from '../harness';
import { freshNir, withIns } from '../frenchFixtures';

/**
 * Our French profiles apply by default, and an official profile (FR Core, PDSm, IHE MHD)
 * is checked against ours that implements it (profiles/profile-map.json, docs/decisions/014-integrity.md).
 */
let t: Target;
beforeAll(async () => {
  t = await startTarget();
});
afterAll(() => t.close());

const INS_NIR = 'urn:oid:1.2.250.1.213.1.4.8';
const G15 = 'https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante';
const errors = (outcome: any) => (outcome.issue ?? []).filter((i: any) => i.severity === 'error' || i.severity === 'fatal');
const validate = (resource: unknown) => http(t.base, '$validate', { method: 'POST', json: resource });

describe('our profiles apply whether or not meta.profile claims them', () => {
  it('refuses a Patient carrying an INS without the INS traits, and accepts one with them', async () => {
    const bare = await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', identifier: [{ system: INS_NIR, value: freshNir() }], name: [{ family: 'Sans-Traits' }] } });
    expect(bare.status).toBe(422);
    expect(JSON.stringify(bare.body)).toContain('dmp-patient-ins');
    const full = await http(t.base, 'Patient', { method: 'POST', json: withIns({ resourceType: 'Patient', name: [{ family: 'Traits', given: ['Anne'] }], gender: 'female', birthDate: '1980-01-01' }, INS_NIR, freshNir()) });
    expect(full.status).toBe(201);
  });

  it('leaves a Patient without an INS (or with only the NSS of its insurer) to the base rules', async () => {
    expect((await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: 'Provisoire' }] } })).status).toBe(201);
    const nss = { system: INS_NIR, value: freshNir(), type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'NH' }] } };
    expect((await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', identifier: [nss] } })).status).toBe(201);
  });

  it('refuses a PractitionerRole without its profession and a Consent without its date', async () => {
    const role = await http(t.base, 'PractitionerRole', { method: 'POST', json: { resourceType: 'PractitionerRole', active: true } });
    expect(role.status).toBe(422);
    expect(errors(role.body).map((i: any) => i.diagnostics).join(' ')).toContain('dmp-practitioner-role');
    const practitioner = (await http(t.base, 'Practitioner', { method: 'POST', json: { resourceType: 'Practitioner', name: [{ family: 'Rôle' }] } })).body;
    const ok = await http(t.base, 'PractitionerRole', { method: 'POST', json: { resourceType: 'PractitionerRole', practitioner: { reference: `Practitioner/${practitioner.id}` }, code: [{ coding: [{ system: G15, code: '10' }] }] } });
    expect(ok.status).toBe(201);
    const patient = (await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: 'Consentant' }] } })).body;
    const consent = {
      resourceType: 'Consent',
      status: 'active',
      scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
      category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
      patient: { reference: `Patient/${patient.id}` },
      policyRule: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTOUT' }] },
      // the patient's opposition to emergency access: a purpose, no actor (ACCESS contract)
      provision: { type: 'deny', purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'ETREAT' }] },
    };
    const undated = await http(t.base, 'Consent', { method: 'POST', json: consent });
    expect(undated.status).toBe(422);
    expect(errors(undated.body).map((i: any) => i.diagnostics).join(' ')).toContain('Consent.dateTime');
    expect((await http(t.base, 'Consent', { method: 'POST', json: { ...consent, dateTime: new Date().toISOString() } })).status).toBe(201);
  });
});

describe('official profiles', () => {
  it('checks a claim of FR Core Patient INS against our INS profile and says so', async () => {
    const claimed = { resourceType: 'Patient', meta: { profile: ['https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-ins'] }, name: [{ family: 'Sans-INS' }] };
    const res = await validate(claimed);
    expect(res.status).toBe(200);
    const info = res.body.issue.find((i: any) => i.severity === 'information' && /fr-core-patient-ins/.test(i.diagnostics));
    expect(info.diagnostics).toContain('https://fhir.dmp.esante.example/StructureDefinition/dmp-patient-ins');
    // checked for real: no INS, no traits
    expect(errors(res.body).length).toBeGreaterThan(0);
    expect(res.body.issue.some((i: any) => /has not been checked because it is unknown/.test(i.diagnostics))).toBe(false);
  });

  it('checks a claim of the PDSm DocumentReference against ours', async () => {
    const claimed = {
      resourceType: 'DocumentReference',
      meta: { profile: ['https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/pdsm-comprehensive-document-reference'] },
      status: 'current',
      content: [{ attachment: { contentType: 'text/plain' } }],
    };
    const res = await validate(claimed);
    expect(res.body.issue.some((i: any) => i.severity === 'information' && /dmp-document-reference/.test(i.diagnostics))).toBe(true);
    expect(errors(res.body).some((i: any) => /masterIdentifier/.test(i.diagnostics))).toBe(true);
  });

  it('warns, explicitly, about an official profile we do not implement', async () => {
    const bundle = {
      resourceType: 'Bundle',
      meta: { profile: ['https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/pdsm-comprehensive-provide-document-bundle'] },
      type: 'transaction',
      entry: [{ fullUrl: `urn:uuid:${crypto.randomUUID()}`, resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } }],
    };
    const res = await validate(bundle);
    const warning = res.body.issue.find((i: any) => /pdsm-comprehensive-provide-document-bundle/.test(i.diagnostics));
    expect(warning.severity).toBe('warning');
    expect(warning.diagnostics).toContain('does not implement');
  });

  it('accepts the FR Core extensions under their official canonical URLs', async () => {
    const patient = withIns({ resourceType: 'Patient', name: [{ family: 'Officielle', given: ['Jeanne'] }], gender: 'female', birthDate: '1975-03-02' }, INS_NIR, freshNir());
    expect(JSON.stringify(patient)).toContain('https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability');
    const res = await validate(patient);
    expect(errors(res.body)).toEqual([]);
    expect(res.body.issue.some((i: any) => /Unknown extension/.test(i.diagnostics))).toBe(false);
  });
});

describe('the benchmark data follows the same rules', () => {
  it('its synthetic Patient (with an INS) and DocumentReference are valid', async () => {
    const { documentReferenceResource, patientResource } = await import('../../scripts/benchLib');
    for (const resource of [patientResource(7), documentReferenceResource(7, 'Patient/p', 'Practitioner/pr')]) {
      const res = await validate(resource);
      expect([resource.resourceType, errors(res.body)]).toEqual([resource.resourceType, []]);
    }
  });

  it('refuses a DocumentReference without its class, whatever it claims', async () => {
    const patient = (await http(t.base, 'Patient', { method: 'POST', json: { resourceType: 'Patient', name: [{ family: 'Classé' }] } })).body;
    const res = await http(t.base, 'DocumentReference', {
      method: 'POST',
      json: { resourceType: 'DocumentReference', status: 'current', type: { coding: [{ system: 'http://loinc.org', code: '11488-4' }] }, subject: { reference: `Patient/${patient.id}` }, content: [{ attachment: { contentType: 'text/plain', data: 'dGVzdA==' } }] },
    });
    expect(res.status).toBe(422);
    expect(errors(res.body).map((i: any) => i.diagnostics).join(' ')).toContain('DocumentReference.category');
  });
});
