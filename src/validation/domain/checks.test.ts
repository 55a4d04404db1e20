import { domainChecks, parseConditionalPatientReference, runDomainChecks } from './checks';

const check = (name: string) => {
  const c = domainChecks.find((x) => x.name === name);
  if (!c) throw new Error(`no check ${name}`);
  return c;
};
const NIR = 'urn:oid:1.2.250.1.213.1.4.8';
const NIR_TEST = 'urn:oid:1.2.250.1.213.1.4.10';
const NIR_DEMO = 'urn:oid:1.2.250.1.213.1.4.11';
const NIA = 'urn:oid:1.2.250.1.213.1.4.9';
const IDNPS = 'urn:oid:1.2.250.1.71.4.2.1';
const IDNST = 'urn:oid:1.2.250.1.71.4.2.2';
const FINESS = 'http://finess.sante.gouv.fr';
const SIRENE = 'https://sirene.fr';

const patient = (...identifier: any[]) => ({ resourceType: 'Patient', identifier });

describe('domain checks', () => {
  it('are named, described and unique', () => {
    const names = domainChecks.map((c) => c.name);
    expect(names).toEqual(['ins-nir-key', 'rpps-format', 'adeli-format', 'finess-format', 'siret-format']);
    for (const c of domainChecks) expect(c.description.length).toBeGreaterThan(20);
  });

  describe('ins-nir-key', () => {
    const c = check('ins-nir-key');

    it('accepts the reference vectors under the production, test and demo OIDs', () => {
      const p = patient(
        { system: NIR, value: '295109912611193' },
        { system: NIR_TEST, value: '253072B07300470' },
        { system: NIR_DEMO, value: '253072A07300443' },
      );
      expect(c.appliesTo(p)).toBe(true);
      expect(c.check(p)).toEqual([]);
    });

    it('refuses a wrong key and says why, pointing at the value', () => {
      const p = patient({ system: 'http://example.org/ipp', value: 'X1' }, { system: NIR, value: '123456789012345' });
      const issues = c.check(p);
      expect(issues).toHaveLength(1);
      expect(issues[0]).toMatchObject({ severity: 'error', code: 'value', expression: ['Patient.identifier[1].value'] });
      expect(issues[0].diagnostics).toMatch(/^ins-nir-key: /);
      expect(issues[0].diagnostics).toContain('gives 11');
    });

    it('refuses a badly shaped NIR before computing a key', () => {
      const issues = c.check(patient({ system: NIR_TEST, value: '25307990730047' }));
      expect(issues).toHaveLength(1);
      expect(issues[0].diagnostics).toContain('15 characters');
    });

    it('checks only the format of an INS-NIA', () => {
      expect(c.check(patient({ system: NIA, value: '295109912611194' }))).toEqual([]);
      const issues = c.check(patient({ system: NIA, value: '2951099126111' }));
      expect(issues).toHaveLength(1);
      expect(issues[0].expression).toEqual(['Patient.identifier[0].value']);
    });

    it('ignores other identifiers and identifiers without value', () => {
      expect(c.check(patient({ system: 'urn:oid:1.2.250.1.213.1.4.2', value: 'whatever' }, { system: NIR }))).toEqual([]);
      expect(c.appliesTo({ resourceType: 'Practitioner' })).toBe(false);
    });

    it('checks contained patients (source patient of a DocumentReference)', () => {
      const doc = {
        resourceType: 'DocumentReference',
        contained: [{ resourceType: 'Practitioner', id: 'a' }, { resourceType: 'Patient', id: 'p', identifier: [{ system: NIR, value: '123456789012345' }] }],
      };
      expect(c.appliesTo(doc)).toBe(true);
      expect(c.check(doc).map((i) => i.expression)).toEqual([['DocumentReference.contained[1].identifier[0].value']]);
    });

    it('checks conditional patient references carrying an INS', () => {
      const doc = { resourceType: 'DocumentReference', subject: { reference: `Patient?identifier=${NIR}|123456789012345` } };
      expect(c.appliesTo(doc)).toBe(true);
      expect(c.check(doc).map((i) => i.expression)).toEqual([['DocumentReference.subject.reference']]);
      const encoded = { resourceType: 'Consent', patient: { reference: `Patient?identifier=${encodeURIComponent(`${NIR}|295109912611193`)}` } };
      expect(c.appliesTo(encoded)).toBe(true);
      expect(c.check(encoded)).toEqual([]);
      expect(c.appliesTo({ resourceType: 'List', subject: { reference: 'Patient/123' } })).toBe(false);
      expect(c.appliesTo({ resourceType: 'List', subject: { reference: 'Patient?identifier=http://example.org|1' } })).toBe(false);
    });

    it('parses conditional references', () => {
      expect(parseConditionalPatientReference(`Patient?_tag=x&identifier=${NIR}|1`)).toEqual({ system: NIR, value: '1' });
      expect(parseConditionalPatientReference('Patient?name=x')).toBeUndefined();
      expect(parseConditionalPatientReference('Patient/1')).toBeUndefined();
      expect(parseConditionalPatientReference('Patient?identifier=%E0%A4%A')).toBeUndefined();
      expect(parseConditionalPatientReference(undefined)).toBeUndefined();
    });
  });

  describe('rpps-format / adeli-format', () => {
    const rpps = check('rpps-format');
    const adeli = check('adeli-format');
    const pract = (...values: string[]) => ({
      resourceType: 'Practitioner',
      identifier: values.map((value) => ({ system: IDNPS, value })),
    });

    it('accept 8 + RPPS and 0 + ADELI', () => {
      const p = pract('899700218896', '0751012345');
      expect(rpps.check(p)).toEqual([]);
      expect(adeli.check(p)).toEqual([]);
    });

    it('rpps-format refuses a short RPPS and an unknown prefix', () => {
      const issues = rpps.check(pract('89970021889', '599700218896', '0751012345'));
      expect(issues.map((i) => i.expression)).toEqual([['Practitioner.identifier[0].value'], ['Practitioner.identifier[1].value']]);
      expect(issues[1].diagnostics).toContain('must start with 8');
    });

    it('adeli-format refuses a malformed ADELI only', () => {
      const issues = adeli.check(pract('075101234A', '89970021889'));
      expect(issues.map((i) => i.expression)).toEqual([['Practitioner.identifier[0].value']]);
    });

    it('apply to PractitionerRole and contained practitioners, not to other systems', () => {
      const role = { resourceType: 'PractitionerRole', identifier: [{ system: IDNPS, value: '8123' }] };
      expect(rpps.appliesTo(role)).toBe(true);
      expect(rpps.check(role)).toHaveLength(1);
      const doc = { resourceType: 'DocumentReference', contained: [pract('0123')] };
      expect(adeli.appliesTo(doc)).toBe(true);
      expect(adeli.check(doc)[0].expression).toEqual(['DocumentReference.contained[0].identifier[0].value']);
      expect(rpps.check({ resourceType: 'Practitioner', identifier: [{ system: 'http://example.org', value: '1' }] })).toEqual([]);
      expect(rpps.appliesTo({ resourceType: 'Patient' })).toBe(false);
    });
  });

  describe('finess-format', () => {
    const c = check('finess-format');
    const org = (...identifier: any[]) => ({ resourceType: 'Organization', identifier });

    it('accepts FINESS and idNatStruct 1 + FINESS, Corsica included', () => {
      expect(c.check(org({ system: FINESS, value: '750100018' }, { system: FINESS, value: '2A0000012' }, { system: IDNST, value: '1750100018' }))).toEqual([]);
    });

    it('refuses malformed FINESS', () => {
      const issues = c.check(org({ system: FINESS, value: '75010001' }, { system: IDNST, value: '175010001' }, { system: IDNST, value: '326920001000016' }));
      expect(issues.map((i) => i.expression)).toEqual([['Organization.identifier[0].value'], ['Organization.identifier[1].value']]);
    });
  });

  describe('siret-format', () => {
    const c = check('siret-format');
    const org = (...identifier: any[]) => ({ resourceType: 'Organization', identifier });

    it('accepts valid SIRET / SIREN, La Poste and idNatStruct 3 + SIRET', () => {
      expect(
        c.check(
          org(
            { system: SIRENE, value: '26920001000016' },
            { system: 'http://sirene.fr', value: '35600000009075' },
            { system: SIRENE, value: '269200010' },
            { system: IDNST, value: '326920001000016' },
          ),
        ),
      ).toEqual([]);
    });

    it('refuses a bad Luhn key, a bad length and a bad idNatStruct SIRET', () => {
      const issues = c.check(
        org(
          { system: SIRENE, value: '26920001000017' },
          { system: SIRENE, value: '2692000100001' },
          { system: SIRENE, value: '269200011' },
          { system: IDNST, value: '326920001000017' },
          { system: IDNST, value: '32692000100001' },
        ),
      );
      expect(issues.map((i) => i.expression![0])).toEqual([0, 1, 2, 3, 4].map((i) => `Organization.identifier[${i}].value`));
      expect(issues.every((i) => i.diagnostics.startsWith('siret-format: '))).toBe(true);
    });
  });

  it('runDomainChecks runs only the applicable checks', () => {
    expect(runDomainChecks({ resourceType: 'Observation' })).toEqual([]);
    expect(runDomainChecks(patient({ system: NIR, value: '123456789012345' }))).toHaveLength(1);
    expect(runDomainChecks(null)).toEqual([]);
  });
});
